"""``fit()``: train a spec into a run folder (``cnnlab.train`` adds the report on top, in ``workflows``).

>>> import cnnlab
>>> run = cnnlab.train("lenet5", "sample", epochs=1, out="runs/x")      # doctest: +SKIP
>>> run = cnnlab.train("runs/x", resume=True, epochs=3)                  # doctest: +SKIP
>>> run.metrics[-1]["val_acc"]                                          # doctest: +SKIP
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import CnnlabError, RunError
from cnnlab.i18n import resolve_lang
from cnnlab.train.config import TrainConfig
from cnnlab.train.progress import Progress, pick_mode
from cnnlab.train.run import RunDir


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
        lang: str | None = None, **overrides: Any) -> Fitted:
    """Train ``spec`` (a spec path, bundled name, dict or ``Spec``) on ``data``; the run folder holds the result.

    ``data``: a source for ``cnnlab.data.load_data`` (folder, ``mnist``, ``sample``...) or a
    ``DataBundle``. ``config`` plus keyword ``overrides`` (``epochs=3``) give the options.
    ``resume=True``: ``spec`` is a run folder to continue. ``cnnlab.train`` (``cnnlab.workflows``)
    calls this, then writes the report.
    """
    from cnnlab.distributed import cleanup, init_from_env, peer_guard

    lang = resolve_lang(lang)
    spec_obj, cfg, source, run_dir = _inputs(spec, data, config, out, resume, overrides)
    dist = init_from_env(cfg.device.value)
    progress = Progress(pick_mode(quiet), lang, enabled=dist.is_main)
    try:
        with peer_guard(dist):
            state, bundle = _run(spec_obj, cfg, source, run_dir, resume, dist, progress)
    finally:
        progress.close()
        cleanup()
    return Fitted(run_dir, state, bundle, lang, quiet, dist.is_main)


def _inputs(spec: Any, data: Any, config: TrainConfig | None, out: Any, resume: bool,
            overrides: dict[str, Any]) -> tuple[Any, TrainConfig, Any, RunDir]:
    """Resolve (spec, config, data source, run folder) for a new or a resumed run."""
    from cnnlab.spec import load_spec

    if resume:
        folder = Path(out or spec)
        if not (folder / "checkpoints" / "resume.safetensors").is_file():
            raise RunError(f"cannot resume {folder}: no checkpoints/resume.safetensors there (is it a run folder "
                           "that reached its first checkpoint?)")
        cfg = TrainConfig.from_yaml(folder / "config.yaml").replace(**overrides)
        spec_obj = load_spec(yaml.safe_load((folder / "spec.yaml").read_text(encoding="utf-8")))
        if data is None:
            import json

            data = json.loads((folder / "data.json").read_text(encoding="utf-8")).get("source")
        return spec_obj, cfg, data, RunDir(folder)
    if data is None:
        raise CnnlabError("no training data given; pass --data (a folder, mnist, cifar10, sample...)")
    spec_obj = load_spec(spec)
    cfg = (config or TrainConfig()).replace(**overrides)
    return spec_obj, cfg, data, RunDir(out if out is not None else RunDir.default_path(spec_obj.name))


def _run(spec: Any, cfg: TrainConfig, source: Any, run_dir: RunDir, resume: bool, dist: Any,
         progress: Progress) -> tuple[str, Any]:
    """Build everything, run the loop, keep status.json truthful. Returns (final state, the DataBundle)."""
    from cnnlab.analysis import analyze
    from cnnlab.distributed import barrier, explain_batch, peer_guard
    from cnnlab.train import checkpoint as ckpt
    from cnnlab.train import setup
    from cnnlab.train.state import check_precision, set_threads
    from cnnlab.train.trainer import Interrupted, Trainer

    analysis = analyze(spec)
    cfg = cfg.resolve(tuple(spec.input))
    device = dist.device
    cfg = cfg.for_device(device.type)
    check_precision(cfg.precision, device)
    threads = set_threads(cfg.threads)
    _warn_if_busy(progress, device, threads)
    bundle = setup.load_bundle(source, tuple(spec.input), cfg, show=progress.mode.value != "quiet")
    _check_classes(analysis.num_classes, bundle.classes, spec.name)
    for warning in getattr(bundle, "warnings", []):
        progress.warn("train.data_warning", text=warning)
    if dist.is_main:
        _prepare_folder(run_dir, resume, cfg, spec, bundle, source)
    barrier()
    model, raw = setup.build_model(spec, cfg, device, dist)
    optimizer = setup.build_optimizer(raw, cfg, device)
    train_loader, val_loader = setup.build_loaders(bundle, cfg, device, dist)
    parts = setup.Parts(model, raw, optimizer, train_loader, val_loader, device)
    steps = len(parts.train_loader) if cfg.max_steps_per_epoch is None else min(len(parts.train_loader), cfg.max_steps_per_epoch)
    trainer = Trainer(parts, cfg, run_dir, progress, dist, steps)
    if resume:
        trainer.restore(ckpt.read_state(run_dir.checkpoints / "resume.safetensors"))
        if dist.is_main:
            run_dir.truncate_metrics(trainer.pos.epoch)
    _announce(progress, run_dir, cfg, analysis, bundle, device, threads, dist, explain_batch, trainer)
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


def _status(dist: Any, run_dir: RunDir, state: str, epoch: int, **extra: Any) -> None:
    if dist.is_main and run_dir.path.exists():
        run_dir.set_status(state, epoch, **extra)


def _check_classes(outputs: int | None, classes: list[str], name: str) -> None:
    if outputs is not None and outputs != len(classes):
        raise CnnlabError(
            f"the network '{name}' ends with {outputs} outputs but the data has {len(classes)} classes "
            f"({', '.join(classes[:5])}{'...' if len(classes) > 5 else ''}); set the output layer to "
            f"{len(classes)} units in the spec (e.g. `- output: {len(classes)}`)")


def _prepare_folder(run_dir: RunDir, resume: bool, cfg: TrainConfig, spec: Any, bundle: Any, source: Any) -> None:
    from cnnlab.train.setup import data_info

    if not resume:
        run_dir.create()
        bundle.write_skipped(run_dir.path / "skipped.txt")
    run_dir.write_setup(cfg, spec.to_dict(), list(bundle.classes), data_info(bundle, source))
    run_dir.set_status("running", 0)


def _announce(progress: Progress, run_dir: RunDir, cfg: TrainConfig, analysis: Any, bundle: Any, device: Any,
              threads: int, dist: Any, explain_batch: Any, trainer: Any) -> None:
    counts = {k: len(getattr(bundle, k).labels) for k in ("train", "val") if getattr(bundle, k) is not None}
    progress.info("train.run_folder", path=run_dir.path)
    progress.info("train.data", line=bundle.summary_line(str(run_dir.path / "skipped.txt")))
    progress.info("train.setup", device=device, threads=threads, precision=cfg.precision.value,
                  params=analysis.total_params, train=counts["train"], val=counts.get("val", 0))
    progress.info("train.recipe", optimizer=cfg.optimizer.value, schedule=cfg.schedule.value,
                  epochs=cfg.epochs, steps=trainer.steps_per_epoch,
                  batch=explain_batch(dist, cfg.batch_size, float(cfg.lr or 0)))
    if trainer.pos.step:
        progress.info("train.resumed", epoch=trainer.pos.epoch + 1, batch=trainer.pos.batch, step=trainer.pos.step)
