"""Reading a sweep back: ``load_sweep(folder)`` -> ``SweepResult`` (trials, the winner, exports).

Compute only: the HTML page (``page.py``) and the terminal table (``table.py``) consume this.

>>> r = load_sweep("sweeps/lenet5")                       # doctest: +SKIP
>>> r.best.params, r.best.value                          # doctest: +SKIP
({'lr': 0.003, 'batch_size': 64}, 0.981)
"""

from __future__ import annotations

import csv
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from cnnlab.errors import CnnlabError
from cnnlab.sweep.space import Space
from cnnlab.sweep.values import config_options

STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running", "WAITING": "waiting"}


@dataclass
class TrialRow:
    """One trial as the table shows it. ``value``: best validation accuracy (complete trials)."""

    number: int
    state: str
    params: dict[str, Any]
    value: float | None = None
    time_s: float | None = None
    epochs: int | None = None
    run: str | None = None
    error: str | None = None
    curve: list[tuple[int, float]] = field(default_factory=list)  # (epoch, val acc)
    host: str | None = None
    retry_of: int | None = None  # the trial this one continues (its worker was killed)
    retried_by: int | None = None


@dataclass
class SweepResult:
    folder: Path
    name: str
    url: str  # redacted
    meta: dict[str, Any]
    trials: list[TrialRow]
    test: dict[str, Any] | None = None  # the winner's test accuracy, measured once after selection

    @property
    def space(self) -> Space:
        return Space.from_dict(self.meta["space"])

    @property
    def finished(self) -> bool:
        return not any(t.state in ("running", "waiting") for t in self.trials)

    @property
    def ranked(self) -> list[TrialRow]:
        """Complete trials, best validation accuracy first (ties: the earlier trial)."""
        done = [t for t in self.trials if t.state == "complete" and t.value is not None]
        return sorted(done, key=lambda t: (-(t.value or 0.0), t.number))

    @property
    def best(self) -> TrialRow | None:
        ranked = self.ranked
        return ranked[0] if ranked else None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for t in self.trials:
            out[t.state] = out.get(t.state, 0) + 1
        return out

    # ---------------------------------------------------------------- exports
    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "storage": self.url, "meta": self.meta, "test": self.test,
                "best": self.best.number if self.best else None, "trials": [asdict(t) for t in self.trials]}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"

    def to_csv(self) -> str:
        names = self.space.names
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["trial", "state", *names, "val_acc", "time_s", "epochs", "run", "error"])
        for t in self.trials:
            writer.writerow([t.number, t.state, *[t.params.get(n, "") for n in names],
                             "" if t.value is None else f"{t.value:.6f}", "" if t.time_s is None else t.time_s,
                             "" if t.epochs is None else t.epochs, t.run or "", t.error or ""])
        return buf.getvalue()

    def best_config(self) -> str:
        """The winner's training options as a ready ``--config`` YAML (spec choices as comments)."""
        best = self.best
        if best is None:
            raise CnnlabError(f"sweep {self.folder}: no trial has completed yet, so there is no best configuration")
        config = dict(self.meta["config"])
        config.update(config_options(best.params))
        config.pop("threads", None)
        head = [f"# best trial {best.number} of sweep {self.name}: validation accuracy {best.value:.4f}",
                f"# use: cnnlab train SPEC --data DATA --config {self.folder / 'best.yaml'}"]
        spec_values = {k: v for k, v in best.params.items() if k.startswith("layers")}
        if spec_values:
            head.append("# spec choices (set them in the spec; the full spec is in the trial's run folder "
                        f"{best.run}/spec.yaml):")
            head += [f"#   {k}: {v}" for k, v in spec_values.items()]
        return "\n".join(head) + "\n" + yaml.safe_dump(config, sort_keys=False)

    def write_exports(self) -> list[Path]:
        """``results.csv``, ``results.json`` and (once a trial completed) ``best.yaml`` in the sweep folder."""
        from cnnlab.utils.io import atomic_write_text

        paths = [self.folder / "results.csv", self.folder / "results.json"]
        atomic_write_text(paths[0], self.to_csv())
        atomic_write_text(paths[1], self.to_json())
        if self.best is not None:
            paths.append(self.folder / "best.yaml")
            atomic_write_text(paths[-1], self.best_config())
        return paths


def read_folder(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """``SWEEP/sweep.json`` (name, redacted storage URL, settings); a missing one is a ``CnnlabError``."""
    path = Path(folder) / "sweep.json"
    if not path.is_file():
        raise CnnlabError(f"{folder} is not a sweep folder (no sweep.json); start one with "
                          "`cnnlab sweep SPEC --data DATA --param lr=...`, or join a remote one with "
                          f"`cnnlab sweep --join {Path(folder).name} --storage URL`")
    return dict(json.loads(path.read_text(encoding="utf-8")))


def storage_url(folder: str | os.PathLike[str], info: dict[str, Any], given: str | None) -> str:
    if given:
        return given
    url = str(info.get("storage", ""))
    if url.startswith("sqlite") and (Path(folder) / "study.db").is_file():
        from cnnlab.sweep.storage import default_url

        return default_url(folder)  # the folder may have moved since
    if "***" in url:
        raise CnnlabError(f"sweep {folder} keeps its study in {url}; give the password with --storage URL "
                          "(or set it in the CNNLAB_SWEEP_STORAGE environment variable)")
    return os.environ.get("CNNLAB_SWEEP_STORAGE") or url


def load_sweep(folder: str | os.PathLike[str], storage: str | None = None) -> SweepResult:
    """Read a sweep's trials from its study (``storage``: the URL, when it is not the folder's SQLite)."""
    from cnnlab.sweep.storage import META_KEY, TEST_KEY, load_study, open_storage, redact

    root = Path(folder)
    info = read_folder(root)
    url = storage_url(root, info, storage)
    study = load_study(open_storage(url), info["name"])
    rows = trial_rows(study.get_trials(deepcopy=False))
    attrs = study.user_attrs
    return SweepResult(root, info["name"], redact(url), attrs[META_KEY], rows, attrs.get(TEST_KEY))


def trial_rows(trials: list[Any]) -> list[TrialRow]:
    """Optuna trials -> rows; surplus trials (never run) are left out, killed ones point to their retry."""
    rows: dict[int, TrialRow] = {}
    for t in trials:
        if t.user_attrs.get("surplus"):
            continue
        value = t.value if t.state.name == "COMPLETE" else None
        rows[t.number] = TrialRow(
            number=t.number, state=STATES.get(t.state.name, t.state.name.lower()), params=dict(t.params),
            value=value, time_s=t.user_attrs.get("time_s"), epochs=t.user_attrs.get("epochs_done"),
            run=t.user_attrs.get("run"), error=t.user_attrs.get("error"),
            curve=sorted((int(k), float(v)) for k, v in t.intermediate_values.items()),
            host=t.user_attrs.get("host"), retry_of=t.user_attrs.get("continues"))
    for t in trials:
        before = t.user_attrs.get("retry_of")  # the attempt this trial continues
        if before in rows and t.number in rows:
            rows[before].retried_by = t.number
            rows[before].state = "retried"
    return [rows[n] for n in sorted(rows)]
