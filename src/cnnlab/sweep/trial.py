"""One trial = one ordinary run folder (``SWEEP/trials/0007``), trained by ``cnnlab.train``.

The Optuna objective: take the trial's values (queued grid/random points, or TPE's suggestions),
apply them to the base ``TrainConfig`` and spec, train with this worker's share of the cores, report
the validation accuracy after every epoch (the median pruner may stop the trial there), and return
the best validation accuracy. A retried trial (its worker was killed) continues the run folder of
the trial it retries from its last checkpoint.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.errors import CnnlabError
from cnnlab.sweep.space import Param, Space, apply_spec

if TYPE_CHECKING:
    import optuna

    from cnnlab.data import DataBundle


class Surplus(Exception):
    """A trial created after the target number was reached (two workers asked at once): not run."""


def trial_folder(root: Path, number: int) -> Path:
    return root / "trials" / f"{number:04d}"


def load_sweep_data(meta: dict[str, Any]) -> DataBundle:
    """The data every trial of the sweep shares: train / val (selection) / test (reported once)."""
    from cnnlab.data import load_data
    from cnnlab.spec import load_spec

    spec = load_spec(meta["base_spec"])
    bundle = load_data(meta["data"], tuple(spec.input), val_split=meta["val_split"], test_split=meta["test_split"],
                       seed=meta["seed"], resize=meta["config"].get("resize", "crop"), progress=False)
    limit = meta.get("limit")
    if limit:
        rng = np.random.default_rng(meta["seed"])
        for split in ("train", "val", "test"):
            part = getattr(bundle, split)
            if part is not None and len(part) > limit:
                setattr(bundle, split, part.subset(np.sort(rng.choice(len(part), limit, replace=False))))
    return bundle


def suggest(trial: optuna.Trial, p: Param) -> Any:
    """The trial's value for ``p`` (a queued point's fixed value, or the sampler's choice)."""
    if p.kind == "choice" or p.points is not None:
        values = p.grid()
        return trial.suggest_categorical(p.name, values)
    if p.kind == "int":
        return trial.suggest_int(p.name, int(p.low), int(p.high), log=p.log)
    return trial.suggest_float(p.name, p.low, p.high, log=p.log)


class Objective:
    """Callable for ``study.optimize``; one per worker process (it holds the loaded data)."""

    def __init__(self, root: Path, meta: dict[str, Any], bundle: DataBundle, threads: int) -> None:
        self.root, self.meta, self.bundle, self.threads = root, meta, bundle, threads
        self.space = Space.from_dict(meta["space"])

    def __call__(self, trial: optuna.Trial) -> float:
        try:
            return self._objective(trial)
        except KeyboardInterrupt:  # Ctrl-C anywhere in the trial: this worker queues it to resume
            trial.set_user_attr("pid", os.getpid())
            trial.set_user_attr("interrupted", True)
            raise

    def _objective(self, trial: optuna.Trial) -> float:
        import optuna

        self.original = trial.user_attrs.get("continues")  # a retry: the trial whose run folder it continues
        self._check_surplus(trial)
        values = {p.name: suggest(trial, p) for p in self.space.params}
        folder, resume = self._folder(trial)
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        trial.set_user_attr("run", os.path.relpath(folder, self.root))
        start = time.perf_counter()
        try:
            best = self._train(trial, values, folder, resume)
        except optuna.TrialPruned:
            _mark_pruned(folder)
            trial.set_user_attr("time_s", round(time.perf_counter() - start, 2))
            raise
        except CnnlabError as exc:
            if getattr(exc, "exit_code", 2) == 130:  # TrainingInterrupted: state saved, retry continues it
                raise KeyboardInterrupt from None
            trial.set_user_attr("error", str(exc))
            trial.set_user_attr("time_s", round(time.perf_counter() - start, 2))
            raise
        except Exception as exc:  # a bug or a resource problem in this trial: recorded, the sweep goes on
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}")
            trial.set_user_attr("time_s", round(time.perf_counter() - start, 2))
            raise
        trial.set_user_attr("time_s", round(time.perf_counter() - start, 2))
        return best

    def _check_surplus(self, trial: optuna.Trial) -> None:
        """TPE creates trials on demand: the n-th fresh trial beyond ``--trials`` is surplus."""
        if self.space.sampler != "tpe" or "point" in trial.user_attrs or self.original is not None:
            return
        fresh = [t for t in trial.study.get_trials(deepcopy=False)
                 if t.number < trial.number and "continues" not in t.user_attrs
                 and "point" not in t.user_attrs]
        if len(fresh) >= int(self.meta["trials"]):
            trial.set_user_attr("surplus", True)
            raise Surplus(f"trial {trial.number}: the sweep already has its {self.meta['trials']} trials")

    def _folder(self, trial: optuna.Trial) -> tuple[Path, bool]:
        """(run folder, resume?): a retry continues its original's folder when that has a checkpoint."""
        original = self.original
        folder = trial_folder(self.root, int(original) if original is not None else trial.number)
        if (folder / "checkpoints" / "resume.safetensors").is_file():
            return folder, True
        if folder.exists():  # killed before its first checkpoint: start that trial again from scratch
            shutil.rmtree(folder)
        return folder, False

    def _train(self, trial: optuna.Trial, values: dict[str, Any], folder: Path, resume: bool) -> float:
        import optuna

        from cnnlab.spec import load_spec
        from cnnlab.train import TrainConfig
        from cnnlab.workflows import train

        options = {k: v for k, v in values.items() if not k.startswith("layers")}  # a schedule off is "none"
        prune = bool(self.meta.get("prune"))

        def on_epoch(row: dict[str, Any]) -> None:
            acc = row.get("val_acc")
            if acc is None:
                return
            trial.report(float(acc), int(row["epoch"]))
            if prune and trial.should_prune():
                raise optuna.TrialPruned(f"pruned after epoch {row['epoch']} (val acc {acc:.2%} below the median)")

        if resume:
            trial.set_user_attr("resumed", True)
            run = train(str(folder), self.bundle, resume=True, quiet=True, report=False, on_epoch=on_epoch,
                        threads=self.threads)
        else:
            spec = load_spec(apply_spec(self.meta["base_spec"], values))
            cfg = TrainConfig.from_dict(self.meta["config"]).replace(**options, threads=self.threads)
            run = train(spec, self.bundle, cfg, out=folder, quiet=True, report=False, on_epoch=on_epoch)
        assert run is not None  # single process: rank 0
        accs = [m["val_acc"] for m in run.metrics if m.get("val_acc") is not None]
        if not accs:
            raise CnnlabError(f"trial {trial.number}: no validation accuracy (the validation split is empty); "
                              "give the sweep a --val-split above 0")
        trial.set_user_attr("epochs_done", len(run.metrics))
        trial.set_user_attr("best_epoch", int(np.argmax(accs)) + 1)
        return float(max(accs))


def _mark_pruned(folder: Path) -> None:
    """The run stopped on purpose: its folder is a finished run (its best checkpoint is usable)."""
    import json

    from cnnlab.train import RunDir

    status = folder / "status.json"
    if status.is_file():
        epoch = int(json.loads(status.read_text(encoding="utf-8")).get("epoch", 0))
        RunDir(folder).set_status("finished", epoch, pruned=True)
