"""``cnnlab evaluate | predict | export | lr-find``: using a trained run (thin shell over the library).

    cnnlab evaluate runs/lenet --data mnist          # test split (else the held-out validation split)
    cnnlab predict runs/lenet digit.png photos/ --top-k 3 --format json
    cnnlab export runs/lenet --format onnx           # runs/lenet/model.onnx, checked with onnxruntime
    cnnlab lr-find lenet5 --data mnist               # learning-rate range test + lr-find-lenet5.png

Registration imports neither torch nor matplotlib; the handlers do, when they run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cnnlab.cli.help import LANG_HELP, HelpFormatter
from cnnlab.cli.options import count, number, seed, whole
from cnnlab.data import defaults
from cnnlab.errors import CnnlabError
from cnnlab.i18n import resolve_lang, tr
from cnnlab.utils.paths import check_output_file

_FMT = HelpFormatter


OUTPUT_FORMATS = ("table", "json", "csv")


def register(sub: argparse._SubParsersAction) -> None:
    _register_evaluate(sub)
    _register_predict(sub)
    _register_export(sub)
    _register_lr_find(sub)


def _common(p: argparse.ArgumentParser, *, checkpoint: bool = True, formats: tuple[str, ...] = OUTPUT_FORMATS) -> None:
    if checkpoint:
        p.add_argument("--checkpoint", choices=("best", "last"), default="best",
                       help="which checkpoint of the run to use")
    p.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N, mps")
    if formats:
        p.add_argument("--format", choices=formats, default="table", dest="output", help="output format")
    p.add_argument("--lang", default=None, help=LANG_HELP)


def _register_evaluate(sub: Any) -> None:
    p = sub.add_parser("evaluate", formatter_class=_FMT, help="accuracy, per-class metrics and confusion of a run",
                       description="Evaluate a trained run on labelled images: accuracy, top-k, per-class "
                       "precision/recall/F1, confusion matrix (rows = true class), most-confused pairs and "
                       "the highest-loss examples.")
    p.add_argument("run", help="run folder written by `cnnlab train`")
    p.add_argument("--data", default=None, help="data source (folder, CSV, mnist, ...); default: the run's own")
    p.add_argument("--split", choices=("auto", "test", "val", "train", "all"), default="auto",
                   help="which split; auto = the test split if the source has one, else the run's held-out "
                   "validation split (its own source) or all images (another source); all = train + val")
    p.add_argument("--batch-size", type=count, default=defaults.EVAL_BATCH_SIZE, help="images per forward pass")
    p.add_argument("--top-k", type=count, nargs="+", default=[1, 3, 5], help="k values for top-k accuracy")
    p.add_argument("--worst", type=whole(0), default=10, help="how many highest-loss examples to list")
    p.add_argument("--confused", type=whole(0), default=10, help="how many most-confused pairs to list")
    p.add_argument("--samples", default=None, metavar="CSV",
                   help="also write every sample's outcome (source, true, predicted, confidence, loss) to this CSV")
    _engine(p)
    _common(p)
    p.set_defaults(func=cmd_evaluate)


def _register_predict(sub: Any) -> None:
    p = sub.add_parser("predict", formatter_class=_FMT, help="classify image files, folders or globs with a run",
                       description="Predict classes of images with the run's own preprocessing. A file that "
                       "cannot be read gets an error line; the others still get predictions. Exit status: "
                       "0 all predicted, 1 some inputs failed, 2 bad arguments or run.")
    p.add_argument("run", help="run folder written by `cnnlab train`")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders (searched recursively) or globs")
    p.add_argument("--top-k", type=count, default=3, help="how many classes to show per image")
    p.add_argument("--batch-size", type=count, default=64, help="images per forward pass")
    _engine(p)
    _common(p)
    p.set_defaults(func=cmd_predict)


def _engine(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine", choices=("auto", "torch", "onnx"), default="auto",
                   help="what runs the model: onnx = onnxruntime (needs the [onnx] extra; checked to match "
                   "PyTorch within 1e-5), torch = the PyTorch model itself, auto = onnx when installed, on the "
                   "CPU and for 512 images or more, else torch")


def _register_export(sub: Any) -> None:
    p = sub.add_parser("export", formatter_class=_FMT, help="export a run's model to ONNX (checked with onnxruntime)",
                       description="Export the run's model. The ONNX file takes the normalised input "
                       "(batch, C, H, W) and returns logits; class names and normalisation are in its "
                       "metadata. It is compared with PyTorch on sample inputs before it is written. "
                       "Needs: pip install 'cnnlab[onnx]'.")
    p.add_argument("run", help="run folder written by `cnnlab train`")
    p.add_argument("--format", choices=("onnx",), default="onnx", dest="model_format", help="model format")
    p.add_argument("--out", default=None, help="output file (default: RUN/model.onnx)")
    p.add_argument("--opset", type=whole(7, 99), default=18, help="ONNX opset version")
    p.add_argument("--exporter", choices=("auto", "dynamo", "legacy"), default="auto",
                   help="torch.onnx path: dynamo (torch.export), legacy (TorchScript), auto = dynamo then legacy")
    p.add_argument("--tolerance", type=number(0, lo_open=True), default=1e-4, help="largest allowed |onnxruntime - PyTorch|")
    p.add_argument("--no-check", action="store_true", help="skip the onnxruntime comparison (not recommended)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _common(p, formats=())
    p.set_defaults(func=cmd_export)


def _register_lr_find(sub: Any) -> None:
    p = sub.add_parser("lr-find", formatter_class=_FMT, help="learning-rate range test, with a plot",
                       description="Train a copy of the network for --iters mini-batches while the learning rate "
                       "grows exponentially; suggest the rate where the loss falls fastest and plot the curve. "
                       "Nothing is saved except the plot; a run given here is not modified.")
    p.add_argument("target", help="a spec (YAML file or bundled name such as lenet5) or a run folder")
    p.add_argument("--data", default=None, help="data source; required for a spec, default for a run: its own")
    p.add_argument("--config", default=None, help="training config YAML (optimizer, weight decay, batch size...)")
    p.add_argument("--optimizer", choices=("adamw", "sgd"), default=None, help="default: the config's (adamw)")
    p.add_argument("--weight-decay", type=number(0), default=None, help="default: the config's")
    p.add_argument("--batch-size", type=count, default=None, help="default: the config's (128)")
    p.add_argument("--start-lr", type=number(0, lo_open=True), default=1e-7, help="first learning rate")
    p.add_argument("--end-lr", type=number(0, lo_open=True), default=10.0, help="last learning rate")
    p.add_argument("--iters", type=whole(2, 1_000_000), default=100, help="number of steps (mini-batches), at least 2")
    p.add_argument("--seed", type=seed, default=0, help="seed for initial weights and batch order")
    p.add_argument("--plot", default=None, help="PNG path (default: lr-find-<name>.png in the current folder)")
    p.add_argument("--force", action="store_true", help="run even when the memory estimate says it does not fit")
    _common(p, checkpoint=False, formats=("table", "json"))
    p.set_defaults(func=cmd_lr_find)


# ---------------------------------------------------------------- handlers


def _load(args: argparse.Namespace) -> Any:
    from cnnlab.distributed import resolve_device
    from cnnlab.train import load_run
    from cnnlab.train.state import set_threads

    device = resolve_device(args.device)
    set_threads(None, device)  # by the CPUs free now, as training does (both engines use this count)
    return load_run(Path(args.run), which=getattr(args, "checkpoint", "best"), device=device)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from cnnlab.cli.use_render import render_evaluation
    from cnnlab.inference.dataset import resolve_split
    from cnnlab.inference.evaluation import evaluate

    lang = resolve_lang(args.lang)
    if args.samples:
        check_output_file(args.samples, "--samples")
    run = _load(args)
    imageset, source, split = resolve_split(run, args.data, args.split, progress=args.output == "table")
    result = evaluate(run, imageset, batch_size=args.batch_size, top_k=args.top_k, engine=args.engine)
    meta = {"run": str(run.path), "checkpoint": run.which, "data": source, "split": split}
    if split in ("all", "train"):
        from cnnlab.inference.dataset import training_overlap

        meta["training_images"] = training_overlap(run, imageset)
        if meta["training_images"]:
            print(tr("use.eval.includes_training", lang, n=meta["training_images"]), file=sys.stderr)
    render_evaluation(result, meta, args.output, lang=lang, worst=args.worst, confused=args.confused)
    if args.samples:
        result.write_samples_csv(args.samples)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from cnnlab.cli.use_render import render_predictions
    from cnnlab.inference.prediction import predict

    lang = resolve_lang(args.lang)
    for name, value in (("top_k", args.top_k), ("batch_size", args.batch_size)):
        if value < 1:
            raise CnnlabError(tr(f"use.err.{name}", lang, value=value))
    run = _load(args)
    if args.output == "table":
        import sys

        from cnnlab.data.notices import file_notices
        from cnnlab.inference.prediction import expand_inputs

        files = [path for path, error in expand_inputs(args.inputs) if error is None]
        for line in file_notices(files, tuple(run.input_shape), run.resize, lang):  # e.g. photos read as grey
            print(line, file=sys.stderr)
    results = predict(run, args.inputs, top_k=args.top_k, batch_size=args.batch_size, engine=args.engine)
    render_predictions(results, args.output, top_k=min(args.top_k, len(run.classes)), lang=lang)
    return 0 if all(r.ok for r in results) else 1


def cmd_export(args: argparse.Namespace) -> int:
    from cnnlab.cli.use_render import render_export
    from cnnlab.inference.export_onnx import export, require_onnx

    lang = resolve_lang(args.lang)
    require_onnx()  # say what to install before loading anything
    if args.out:
        check_output_file(args.out, "--out")
    run = _load(args)
    result = export(run, args.out, format=args.model_format, exporter=args.exporter, opset=args.opset,
                    check=not args.no_check, tolerance=args.tolerance)
    render_export(result, tolerance=args.tolerance, as_json=args.json, lang=lang)
    return 0


def cmd_lr_find(args: argparse.Namespace) -> int:
    from cnnlab.cli.use_render import render_lr_find
    from cnnlab.train.lr_find import lr_find

    lang = resolve_lang(args.lang)
    if args.plot:
        check_output_file(args.plot, "--plot")
    model, config, source, name = _lr_target(args)
    if source is None:
        raise CnnlabError(f"lr-find on a spec needs training images: add --data SOURCE (e.g. --data mnist "
                          f"or --data ./images); received the spec {args.target!r} without --data")
    from cnnlab.data import load_data
    from cnnlab.distributed import resolve_device

    input_shape = tuple(int(d) for d in model.input_shape)
    bundle = load_data(source, input_shape, val_split=config.val_split, seed=config.seed,
                       resize=config.resize, progress=args.output == "table")
    result = lr_find(model.module, bundle, config=config, start_lr=args.start_lr, end_lr=args.end_lr,
                     num_iter=args.iters, batch_size=args.batch_size, seed=args.seed,
                     device=resolve_device(args.device))
    plot = Path(args.plot) if args.plot else Path(f"lr-find-{_safe(name)}.png")
    from cnnlab.visualize.lr_find import plot_lr_find

    plot_lr_find(result, plot, title=tr("use.lr.plot.title_for", lang, name=name), lang=lang)
    render_lr_find(result, plot, args.output, lang=lang)
    return 0


class _Target:
    def __init__(self, module: Any, input_shape: Any) -> None:
        self.module, self.input_shape = module, input_shape


def _lr_target(args: argparse.Namespace) -> tuple[_Target, Any, str | None, str]:
    """(model holder, TrainConfig, data source, display name) for a run folder or a spec."""
    import torch

    from cnnlab.train import TrainConfig

    overrides = {"optimizer": args.optimizer, "weight_decay": args.weight_decay, "seed": args.seed}
    path = Path(args.target)
    if path.is_dir():
        from cnnlab.train import load_run

        run = load_run(path, which="last")
        config = (TrainConfig.from_yaml(args.config) if args.config else run.config).replace(**overrides)
        return _Target(run.model, run.input_shape), config, args.data or run.data.get("source"), path.name
    from cnnlab.model import build
    from cnnlab.spec import load_spec

    spec = load_spec(args.target)
    config = (TrainConfig.from_yaml(args.config) if args.config else TrainConfig()).replace(**overrides)
    from cnnlab.analysis import analyze
    from cnnlab.distributed import resolve_device
    from cnnlab.train.limits import check_fits

    check_fits(analyze(spec), args.batch_size or config.batch_size, resolve_device(args.device),
               force=args.force)  # before build allocates the weights
    torch.manual_seed(config.seed)  # the same initial weights `cnnlab train --seed` starts from
    return _Target(build(spec), spec.input), config, args.data, spec.name


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name).strip("-") or "model"
