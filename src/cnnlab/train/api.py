"""``fit()``: train a spec into a run folder (``cnnlab.train`` adds the report on top, in ``workflows``).

>>> import cnnlab
>>> run = cnnlab.train("lenet5", "sample", epochs=1, out="runs/x")      # doctest: +SKIP
>>> run = cnnlab.train("runs/x", resume=True, epochs=3)                  # doctest: +SKIP
>>> run.metrics[-1]["val_acc"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cnnlab.errors import CnnlabError, RunError
from cnnlab.i18n import count, decimal, integer, resolve_lang, tr
from cnnlab.train.config import TrainConfig
from cnnlab.train.limits import check_fits, out_of_memory
from cnnlab.train.progress import Progress, pick_mode
from cnnlab.train.run import RunDir
from cnnlab.utils.paths import check_output_folder


class TrainingInterrupted(RunError):
    """Ctrl-C (or SIGTERM): the state was saved; ``--resume`` continues. Exit code 130."""

    exit_code = 130


@dataclass
class Fitted:
    """What ``fit`` leaves behind: the run folder, how it ended, the data it used (for a report)."""

    run_dir: RunDir
    state: str
    bundle: Any
    lang: str
    quiet: bool
    is_main: bool


def fit(spec: Any, data: Any = None, config: TrainConfig | None = None, *,
        out: str | os.PathLike[str] | None = None, resume: bool = False, quiet: bool = False,
        lang: str | None = None, force: bool = False, keep_lock: bool = False,
        on_epoch: Callable[[dict[str, Any]], None] | None = None, **overrides: Any) -> Fitted:
    """Train ``spec`` (a spec path, bundled name, dict or ``Spec``) on ``data``; the run folder holds the result.

    ``data``: a source for ``cnnlab.data.load_data`` (folder, ``mnist``, ``sample``...) or a
    ``DataBundle``. ``config`` plus keyword ``overrides`` (``epochs=3``) give the options.
    ``resume=True``: ``spec`` is a run folder to continue. ``cnnlab.train`` (``cnnlab.workflows``)
    calls this, then writes the report. ``force=True`` skips the memory check
    (``cnnlab.train.limits``). The run folder is locked against other writers while this
    runs; ``keep_lock=True`` keeps it locked afterwards (release with ``identity.release_lock``).
    ``on_epoch(row)`` is called after each epoch's metrics row is written (``cnnlab sweep`` prunes
    there); an exception it raises ends the run, leaving ``status.json`` at ``running`` for the caller.
    """
    from cnnlab.distributed import cleanup, init_from_env, peer_guard

    lang = resolve_lang(lang)
    spec_obj, cfg, source, run_dir = _inputs(spec, data, config, out, resume, overrides)
    check_output_folder(run_dir.path, "--out")
    dist = init_from_env(cfg.device.value)
    progress = Progress(pick_mode(quiet), lang, enabled=dist.is_main)
    try:
        with peer_guard(dist), out_of_memory(run_dir.path, lang):
            state, bundle = _run(spec_obj, cfg, source, run_dir, resume, dist, progress, force, on_epoch)
    except BaseException:
        keep_lock = False  # nothing follows a failed fit: let go of the folder
        raise
    finally:
        progress.close()
        cleanup()
        if not keep_lock:
            from cnnlab.train.identity import release_lock

            release_lock(run_dir.path)
    return Fitted(run_dir, state, bundle, lang, quiet, dist.is_main)


def _inputs(spec: Any, data: Any, config: TrainConfig | None, out: Any, resume: bool,
            overrides: dict[str, Any]) -> tuple[Any, TrainConfig, Any, RunDir]:
    """Resolve (spec, config, data source, run folder) for a new or a resumed run."""
    from cnnlab.spec import load_spec

    if resume:
        from cnnlab.train.run import read_resumable

        folder = Path(out or spec)
        stored_cfg, spec_obj, recorded_source = read_resumable(folder)
        refuse_config_changes(folder, stored_cfg, overrides)
        return spec_obj, stored_cfg.replace(**overrides), data if data is not None else recorded_source, RunDir(folder)
    _refuse_run_folder(spec)
    if data is None:
        raise CnnlabError("no training data given; pass --data (a folder, mnist, cifar10, sample...)")
    spec_obj = load_spec(spec)
    cfg = (config or TrainConfig()).replace(**overrides)
    return spec_obj, cfg, data, RunDir(out if out is not None else RunDir.default_path(spec_obj.name))


def _refuse_run_folder(spec: Any) -> None:
    """A run folder given as SPEC without ``resume``: say so, and how to continue or evaluate it."""
    if isinstance(spec, (str, os.PathLike)) and (Path(spec) / "config.yaml").is_file() \
            and (Path(spec) / "spec.yaml").is_file():
        raise RunError(f"'{os.fspath(spec)}' is a run folder, not a spec: continue it with "
                       f"`cnnlab train {os.fspath(spec)} --resume` (in Python: resume=True), or train a new run "
                       f"from its network with `cnnlab train {os.fspath(spec)}/spec.yaml --data DATA`")


def _run(spec: Any, cfg: TrainConfig, source: Any, run_dir: RunDir, resume: bool, dist: Any,
         progress: Progress, force: bool = False,
         on_epoch: Callable[[dict[str, Any]], None] | None = None) -> tuple[str, Any]:
    """Build everything, run the loop, keep status.json truthful. Returns (final state, the DataBundle)."""
    from cnnlab.analysis import analyze
    from cnnlab.distributed import barrier, explain_batch, peer_guard
    from cnnlab.train import setup, transfer
    from cnnlab.train.state import bf16_is_slow, check_precision, set_threads
    from cnnlab.train.trainer import Interrupted, Trainer

    analysis = analyze(spec)
    cfg = cfg.resolve(tuple(spec.input))
    device = dist.device
    cfg = cfg.for_device(device.type)
    check_precision(cfg.precision, device)
    if bf16_is_slow(cfg.precision, device):
        import torch

        progress.warn("train.bf16_slow_cpu", capability=torch.backends.cpu.get_cpu_capability())
    from cnnlab.train.batches import batch_sizes

    largest = max(batch for _, batch in batch_sizes(cfg.batch_size, cfg.batch_schedule))  # a batch schedule grows it
    check_fits(analysis, largest, device, force=force, lang=progress.lang)
    choice = set_threads(cfg.threads, device)
    _warn_if_busy(progress, device, choice.threads if choice.reason in ("forced", "env") else 1)
    if dist.is_main:  # one writer per run folder: taken before anything is read or written
        from cnnlab.train.identity import acquire_lock

        if not resume:
            run_dir.check_fresh()
        acquire_lock(run_dir.path)
        if not resume:
            run_dir.check_fresh()  # again, now that no one else can be creating it
    bundle = setup.load_bundle(source, tuple(spec.input), cfg, show=progress.mode.value != "quiet")
    prepared = transfer.prepare(spec, cfg, bundle, resume, run_dir.path, progress)  # --init-from
    if prepared.spec is not spec:
        spec, analysis = prepared.spec, analyze(prepared.spec)
    bundle = prepared.bundle
    _check_classes(analysis.num_classes, bundle.classes, spec.name)
    for warning in getattr(bundle, "warnings", []):
        progress.warn("train.data_warning", text=warning)
    if dist.is_main and isinstance(source, (str, os.PathLike)) and progress.mode.value != "quiet":
        from cnnlab.data.notices import data_notices, sample_notice

        for line in data_notices(source, tuple(spec.input), cfg.resize, progress.lang) + sample_notice(
                source, cfg.val_split, lang=progress.lang):
            progress.info("notice.plain", text=line)  # colour to grey, resizing, the sample's fixed split
    from cnnlab.train.identity import make_identity

    ident = make_identity(spec.to_dict(), cfg.to_dict(), bundle)
    state = _check_resume(run_dir, ident, spec, cfg) if resume else None
    if state is not None and cfg.threads is None:  # auto threads: resume with the count the run started with
        choice = _resumed_threads(choice, state.meta.get("runtime", {}), device)
    threads = choice.threads
    if dist.is_main and not resume:
        _prepare_folder(run_dir, cfg, spec, bundle, source, ident, prepared.data_extra)
    barrier()
    model, raw = setup.build_model(spec, cfg, device, dist)
    finetune = transfer.after_build(raw, cfg, prepared, run_dir, progress, dist)
    optimizer = setup.build_optimizer(raw, cfg, device)
    train_loader, val_loader = setup.build_loaders(bundle, cfg, device, dist)
    parts = setup.Parts(model, raw, optimizer, train_loader, val_loader, device, finetune)
    from cnnlab.train.batches import BatchPlan

    plan = BatchPlan.for_config(cfg, len(train_loader.indices()), len(bundle.train.labels), dist.world_size)
    trainer = Trainer(parts, cfg, run_dir, progress, dist, plan, on_epoch)
    if resume:
        if state is not None:
            _warn_not_exact(progress, state.meta.get("runtime", {}), threads, device)
            trainer.restore(state)
        else:
            progress.warn("train.restart", path=run_dir.path)
        if dist.is_main:  # everything checked: only now does the resume touch the folder
            run_dir.truncate_metrics(trainer.pos.epoch)
            run_dir.set_status("running", trainer.pos.epoch)
    if dist.is_main:
        run_dir.write_runtime({**choice.to_dict(), "device": str(device)})
    _announce(progress, run_dir, cfg, analysis, bundle, device, choice, dist, explain_batch, trainer)
    try:
        with peer_guard(dist):  # a dead rank -> PeerFailure (a CnnlabError): status "failed" below
            state = trainer.fit()
    except Interrupted:
        _status(dist, run_dir, "interrupted", trainer.pos.epoch)
        raise TrainingInterrupted(
            f"training interrupted in epoch {trainer.pos.epoch + 1} at batch {trainer.pos.batch}; the state is saved. "
            f"Continue with: cnnlab train {run_dir.path} --resume") from None
    except CnnlabError as exc:
        _status(dist, run_dir, "diverged" if "NaN" in str(exc) else "failed", trainer.pos.epoch)
        raise
    except KeyboardInterrupt:
        _status(dist, run_dir, "interrupted", trainer.pos.epoch)
        raise
    _status(dist, run_dir, "finished", trainer.pos.epoch, stopped_early=state == "stopped_early")
    return state, bundle


def _warn_if_busy(progress: Progress, device: Any, threads: int) -> None:
    """On a CPU shared with other work, several intra-op threads wait on each other: say so."""
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if device.type == "cpu" and threads > 1 and load > cores + 0.5:
        progress.warn("train.busy", load=load, cores=cores, threads=threads)


def _resumed_threads(choice: Any, saved: dict[str, Any], device: Any) -> Any:
    """An exact resume needs the thread count of the interrupted process (summation order): reuse it."""
    import torch

    from cnnlab.utils.cpus import ThreadChoice

    recorded = saved.get("threads")
    if device.type != "cpu" or not isinstance(recorded, int) or recorded < 1 or recorded == choice.threads:
        return choice
    torch.set_num_threads(recorded)
    return ThreadChoice(recorded, "resumed", choice.cpus)


def threads_text(choice: Any, lang: str) -> str:
    """``2 (auto: 2 free cores)``: the count and why, for the training header."""
    cpus = choice.cpus
    fields = {"usable": integer(cpus.usable, lang), "others": decimal(cpus.others, lang, 1),
              "quota": decimal(cpus.quota or 0.0, lang, 1)} if cpus else {}
    key = f"train.threads_{choice.reason}" if cpus or choice.reason in ("forced", "env", "resumed", "default") else ""
    return f"{choice.threads} ({tr(key, lang, **fields)})" if key else str(choice.threads)


def _status(dist: Any, run_dir: RunDir, state: str, epoch: int, **extra: Any) -> None:
    if dist.is_main and run_dir.path.exists():
        run_dir.set_status(state, epoch, **extra)


def _check_classes(outputs: int | None, classes: list[str], name: str) -> None:
    if outputs is not None and outputs != len(classes):
        raise CnnlabError(
            f"the network '{name}' ends with {outputs} outputs but the data has {len(classes)} classes "
            f"({', '.join(classes[:5])}{'...' if len(classes) > 5 else ''}); set the output layer to "
            f"{len(classes)} units in the spec (e.g. `- output: {len(classes)}`)")


def _prepare_folder(run_dir: RunDir, cfg: TrainConfig, spec: Any, bundle: Any, source: Any, ident: Any,
                    data_extra: dict[str, Any] | None = None) -> None:
    """A new run: its files, identity first, ``status.json`` last (its presence means "set up")."""
    from cnnlab.train.identity import write_identity
    from cnnlab.train.setup import data_info

    run_dir.create()
    bundle.write_skipped(run_dir.path / "skipped.txt")
    write_identity(run_dir.path, ident)
    run_dir.write_setup(cfg, spec.to_dict(), list(bundle.classes), {**data_info(bundle, source), **(data_extra or {})})
    run_dir.set_status("running", 0)


def refuse_config_changes(folder: Path, stored: TrainConfig, overrides: dict[str, Any]) -> None:
    """Options given with --resume that would change the run's recipe are refused (nothing written yet)."""
    from cnnlab.train.identity import RECIPE, refuse_changes

    old, new = stored.to_dict(), stored.replace(**overrides).to_dict()
    refuse_changes(folder, [f"--{k.replace('_', '-')} ({old[k]} -> {new[k]})" for k in RECIPE if old[k] != new[k]])


def _check_resume(run_dir: RunDir, ident: Any, spec: Any, cfg: TrainConfig) -> Any:
    """Everything a resume needs, checked before anything is written: identity, then the checkpoint.

    Returns the ``TrainingState`` to restore, or ``None`` when the run stopped before its first
    checkpoint (it then starts again from step 0, which repeats the lost steps exactly).
    """
    from cnnlab.train import checkpoint as ckpt
    from cnnlab.train.identity import differences, read_identity, refuse_changes

    recorded = read_identity(run_dir.path)
    if recorded is not None:
        refuse_changes(run_dir.path, differences(recorded.record, ident.record))
    path = run_dir.checkpoints / "resume.safetensors"
    if not path.exists():
        return None
    state = ckpt.read_state(path)
    check_state_matches(state, spec, path)
    return state


def check_state_matches(state: Any, spec: Any, path: Path) -> None:
    """``RunError`` unless the checkpoint's weights have exactly the names and shapes of ``spec``'s model."""
    from cnnlab.model import build

    expected = {k: tuple(v.shape) for k, v in build(spec).state_dict().items()}
    got = {k: tuple(v.shape) for k, v in state.weights.items()}
    if expected != got or "position" not in state.meta:
        wrong = sorted(set(expected) ^ set(got)) or [k for k in expected if expected[k] != got.get(k)]
        raise RunError(f"{path} does not belong to this run's spec.yaml (differs at: {', '.join(wrong[:5]) or 'metadata'}); "
                       "it was copied from another run or damaged. Restore the run's own checkpoint, or delete "
                       f"it to restart from the beginning with `cnnlab train {path.parent.parent} --resume`")


def _warn_not_exact(progress: Progress, saved: dict[str, Any], threads: int, device: Any) -> None:
    """Bit-identity needs the same threads, device and torch build as the interrupted process."""
    import torch

    now = {"threads": threads, "device": str(device), "torch": torch.__version__}
    changed = [f"{k} {saved[k]} -> {now[k]}" for k in now if k in saved and saved[k] != now[k]]
    if changed:
        progress.warn("train.not_exact", changes="; ".join(changed))


def _announce(progress: Progress, run_dir: RunDir, cfg: TrainConfig, analysis: Any, bundle: Any, device: Any,
              choice: Any, dist: Any, explain_batch: Any, trainer: Any) -> None:
    counts = {k: len(getattr(bundle, k).labels) for k in ("train", "val") if getattr(bundle, k) is not None}
    progress.info("train.run_folder", path=run_dir.path)
    progress.info("train.data", line=bundle.summary_line(str(run_dir.path / "skipped.txt")))
    progress.info("train.setup", device=device, threads=threads_text(choice, progress.lang), precision=cfg.precision.value,
                  params=analysis.total_params, train=counts["train"], val=counts.get("val", 0))
    progress.info("train.recipe", optimizer=cfg.optimizer.value, schedule=cfg.schedule.value,
                  epochs=count(cfg.epochs, "epoch", progress.lang), steps=count(trainer.plan.steps_in(0), "step", progress.lang),
                  batch=explain_batch(dist, cfg.batch_size, trainer.peak_lr, cfg.lr_scaling is not None))
    _announce_scaling(progress, cfg, trainer, dist.world_size)
    if trainer.pos.step:
        progress.info("train.resumed", epoch=trainer.pos.epoch + 1, batch=trainer.pos.batch, step=trainer.pos.step)


def _announce_scaling(progress: Progress, cfg: TrainConfig, trainer: Any, world_size: int) -> None:
    """The lr scaling (given lr, reference batch, effective lr) and the batch schedule, when used."""
    lang = progress.lang
    if cfg.lr_scaling is not None:
        progress.info("train.lr_scaled", lr=decimal(trainer.peak_lr, lang), given=decimal(float(cfg.lr or 0), lang),
                      scaling=cfg.lr_scaling.value, batch=integer(cfg.batch_size * world_size, lang),
                      reference=integer(cfg.lr_reference_batch, lang))
    if cfg.batch_schedule:
        parts = [tr_stretch(first, last, batch, steps, lang) for first, last, batch, steps in trainer.plan.stretches()]
        progress.info("train.batch_schedule", stretches="; ".join(parts), total=integer(trainer.plan.total, lang))


def tr_stretch(first: int, last: int, batch: int, steps: int, lang: str) -> str:
    """One stretch of a batch schedule, e.g. ``epochs 1-10: batch 128, 47 steps each``."""
    key = "train.batch_stretch_one" if first == last else "train.batch_stretch"
    return tr(key, lang, first=integer(first, lang), last=integer(last, lang), batch=integer(batch, lang),
              steps=integer(steps, lang))
