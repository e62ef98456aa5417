"""``cnnlab train`` and ``cnnlab demo``: thin shells over ``cnnlab.workflows.train`` and ``cnnlab.workflows.demo.run_demo``.

    cnnlab train lenet5 --data mnist --epochs 10 --out runs/lenet
    cnnlab train runs/lenet --resume
    cnnlab train my.yaml --data ./cats_vs_dogs --config recipe.yaml --lr 0.001 --dry-run
    cnnlab demo

Registration imports neither torch nor ``cnnlab.train`` (nor yaml): every ``cnnlab`` command builds
this parser, so the options are a literal table (``FIELDS``, ``_CHOICES``) that a test keeps equal to
``TrainConfig``'s fields and enums; the handlers import the library when they run.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import TRAIN_TYPES, count, whole
from cnnlab.data import defaults

if TYPE_CHECKING:
    from cnnlab.train.config import TrainConfig

# TrainConfig's fields as (name, type, default), in order; tests/test_train_cli.py checks it against the class
FIELDS: tuple[tuple[str, type, object], ...] = (
    ("epochs", int, 10),
    ("batch_size", int, 128),
    ("optimizer", str, "adamw"),
    ("lr", float, None),
    ("momentum", float, 0.9),
    ("weight_decay", float, None),
    ("schedule", str, "onecycle"),
    ("warmup", float, None),
    ("label_smoothing", float, 0.0),
    ("augment", bool, True),
    ("translate", int, None),
    ("hflip", bool, None),
    ("zoom", float, 0.0),
    ("rotate", float, 0.0),
    ("scale", float, 0.0),
    ("val_split", float, defaults.VAL_SPLIT),
    ("resize", str, defaults.RESIZE),
    ("strict", bool, False),
    ("seed", int, defaults.SEED),
    ("device", str, "auto"),
    ("precision", str, "fp32"),
    ("channels_last", bool, None),
    ("compile", bool, False),
    ("sync_bn", bool, False),
    ("patience", int, None),
    ("threads", int, None),
    ("eval_batch_size", int, defaults.EVAL_BATCH_SIZE),
    ("checkpoint_minutes", float, 5.0),
    ("checkpoint_steps", int, 0),
    ("max_steps_per_epoch", int, None),
    ("init_from", str, None),
    ("freeze_epochs", int, None),
    ("lr_ratio", float, None),
    ("batch_schedule", str, None),
    ("lr_steps", str, None),
    ("lr_scaling", str, None),
    ("lr_reference_batch", int, 256),
)

# option -> help text; the default shown is TrainConfig's (flags default to "not given")
_HELP = {
    "epochs": "passes over the training split",
    "batch_size": "images per step (per process under DDP)",
    "optimizer": "adamw, or sgd (with Nesterov momentum)",
    "lr": "peak learning rate (None: 0.003 for adamw, 0.05 for sgd)",
    "momentum": "SGD momentum",
    "weight_decay": "weight decay on weights, not on biases/norms (None: 0.01 adamw, 5e-4 sgd)",
    "schedule": "learning-rate schedule",
    "warmup": "fraction of all steps spent warming up (None: 0.25 for onecycle and cosine, 0 for step)",
    "label_smoothing": "label smoothing of the cross-entropy loss",
    "augment": "random shifts (and flips for colour images) during training",
    "translate": "largest random shift in pixels (None: about 1/12 of the image height)",
    "hflip": "random horizontal flips (None: on for colour images)",
    "zoom": "random zoom-in: a random crop enlarged by up to 1 + ZOOM, e.g. 0.2 (0: off)",
    "rotate": "random rotation about the centre by an angle drawn from -ROTATE to +ROTATE degrees, e.g. 10 "
              "(nearest pixel, zero fill; 0: off)",
    "scale": "random scale about the centre by a factor drawn from 1 - SCALE to 1 + SCALE, e.g. 0.1 (0: off)",
    "val_split": "fraction of the training images held out for validation (when the data has no val split)",
    "resize": "how images of another size are fitted: crop, pad or stretch",
    "strict": "stop with an error on unreadable image files instead of skipping them (they are listed in RUN/skipped.txt)",
    "seed": "random seed: same seed, data and device give the same result",
    "device": "auto picks cuda, then mps, then cpu",
    "precision": "fp32, or mixed precision bf16 / fp16 (fp16: GPU only, with loss scaling)",
    "channels_last": "channels-last memory format (None: on for CPUs, where convolutions get ~20%% faster, and for GPUs in bf16/fp16)",
    "compile": "torch.compile the model (slow start, faster steps)",
    "sync_bn": "synchronise BatchNorm statistics across processes (DDP)",
    "patience": "early stopping: stop after this many epochs without a better val accuracy",
    "threads": "CPU threads (None: one per free core, chosen at start)",
    "eval_batch_size": "images per validation batch",
    "checkpoint_minutes": "save a resumable checkpoint at least this often inside long epochs",
    "checkpoint_steps": "also save one every N steps (0: off)",
    "max_steps_per_epoch": "cut each epoch to at most N steps (smoke tests)",
    "init_from": "start from weights: a run folder, a .safetensors / state-dict file, or a named set "
                 "such as resnet18:imagenet (the head is replaced when the class count differs)",
    "freeze_epochs": "fine-tuning: train only the head for N epochs, then every layer (None: 1 with --init-from, else 0)",
    "lr_ratio": "discriminative learning rates: the first layer's LR as a fraction of the head's, "
                "geometric in between (None: 0.1 with --init-from, else 1)",
    "batch_schedule": "EPOCH:FACTOR,...: after EPOCH completed epochs multiply the batch size by FACTOR; the "
                      "learning rate stays (Smith et al. 2017), e.g. 10:5,20:5",
    "lr_steps": "EPOCH:FACTOR,... for --schedule step: after EPOCH completed epochs multiply the learning rate "
                "by FACTOR, e.g. 10:0.2,20:0.2",
    "lr_scaling": "scale --lr (meant for --lr-reference-batch) to the initial batch size: linear (Goyal et al. "
                  "2017) or sqrt (Hoffer et al. 2017); a batch schedule does not rescale it",
    "lr_reference_batch": "the batch size --lr is meant for, with --lr-scaling",
}
# the values of the enums Optimizer, Schedule, Device, Precision and Resize (checked by a test)
_CHOICES: dict[str, list[str]] = {
    "optimizer": ["adamw", "sgd"], "schedule": ["onecycle", "cosine", "constant", "step"],
    "device": ["auto", "cpu", "cuda", "mps"], "precision": ["fp32", "bf16", "fp16"],
    "resize": ["crop", "stretch", "pad"], "lr_scaling": ["linear", "sqrt"],
}


_Formatter = HelpFormatter


def register(sub: Any) -> None:
    p = sub.add_parser("train", help="train a network on images; writes a run folder",
                       description="Train SPEC (a spec file or bundled name) on --data, or continue a run "
                                   "folder with --resume. Options come from --config, overridden by flags.",
                       formatter_class=_Formatter)
    p.add_argument("spec", metavar="SPEC_OR_RUN", help="spec file / bundled name, or a run folder with --resume")
    p.add_argument("--data", help="folder, IDX/CIFAR files, CSV, mnist, fashion-mnist, cifar10, sample")
    p.add_argument("--out", help="run folder (default: runs/<spec name>, numbered when taken)")
    p.add_argument("--config", help="YAML file of training options, or a bundled recipe's name "
                                    "(e.g. mnist-modern); flags override it")
    p.add_argument("--resume", action="store_true", help="continue the run folder SPEC_OR_RUN where it stopped")
    p.add_argument("--dry-run", action="store_true", help="print the resolved options and exit")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--no-report", action="store_true", help="do not write report.html at the end")
    p.add_argument("--force", action="store_true",
                   help="train even when the memory estimate says the run does not fit in RAM / GPU memory")
    p.add_argument("--devices", type=whole(1, 1024), default=1, help="train on N local processes (torchrun)")
    p.add_argument("--lang", default=None, help=LANG_HELP)
    add_config_flags(p)
    p.set_defaults(func=_train)

    d = sub.add_parser("demo", help="the whole path on the bundled MNIST sample, offline (~1 minute)",
                       formatter_class=_Formatter)
    d.add_argument("--out", default=None, help="run folder (default: runs/demo, numbered when taken)")
    d.add_argument("--epochs", type=count, default=None, help="training epochs (default: the demo recipe's)")
    d.add_argument("--quiet", action="store_true", help="no progress bars (the summary and results still print)")
    d.add_argument("--threads", type=TRAIN_TYPES["threads"], default=None, help="CPU threads (default: one per free core: affinity, CPU quota, other busy processes)")
    d.add_argument("--lang", default=None, help=LANG_HELP)
    d.set_defaults(func=_demo)


def add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per TrainConfig field; unset flags do not override --config (help shows the default)."""
    group = p.add_argument_group("training options")
    for name, kind, default in FIELDS:
        flag = "--" + name.replace("_", "-")
        text = _HELP.get(name, name)
        shown = "off" if default is None and "(None:" not in text else default
        help_text = text if shown is None else f"{text} (default: {shown})"
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=help_text)
            continue
        group.add_argument(flag, type=TRAIN_TYPES.get(name, kind), default=argparse.SUPPRESS, choices=_CHOICES.get(name),
                           metavar=None if name in _CHOICES else name.upper(), help=help_text)


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {name: getattr(args, name) for name, _, _ in FIELDS if hasattr(args, name)}


def _train(args: argparse.Namespace) -> int:
    if args.devices > 1:
        from cnnlab.distributed import launch

        return launch(sys.argv[1:], args.devices)
    from cnnlab.train.config import load_config

    if args.out is not None and not args.dry_run:
        from cnnlab.utils.paths import check_output_folder

        check_output_folder(args.out, "--out")
    config = load_config(args.config) if args.config else None
    overrides = config_overrides(args)
    if args.dry_run:
        return _dry_run(args, config, overrides)
    from cnnlab.workflows import train

    train(args.spec, args.data, config, out=args.out, resume=args.resume, quiet=args.quiet,
          lang=args.lang, report=not args.no_report, force=args.force, **overrides)
    return 0


def _dry_run(args: argparse.Namespace, config: TrainConfig | None, overrides: dict[str, Any]) -> int:
    from cnnlab.spec import load_spec
    from cnnlab.train.config import TrainConfig

    if args.resume:
        from pathlib import Path

        from cnnlab.train.api import refuse_config_changes

        stored = TrainConfig.from_yaml(Path(args.spec) / "config.yaml")
        refuse_config_changes(Path(args.spec), stored, overrides)  # what --resume itself would refuse
        resolved = stored.replace(**overrides)
        print(f"# resume {args.spec}")
        print(resolved.to_yaml(), end="")
        return 0
    spec = load_spec(args.spec)
    resolved = (config or TrainConfig()).replace(**overrides).resolve(tuple(spec.input))  # type: ignore[arg-type]
    print(f"# {spec.name}, input {tuple(spec.input)}, data {args.data}")
    print(resolved.to_yaml(), end="")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from cnnlab.workflows.demo import run_demo

    run_demo(out=args.out, epochs=args.epochs, quiet=args.quiet, lang=args.lang, threads=args.threads)
    return 0
