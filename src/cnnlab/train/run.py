"""The run folder: written by the trainer (``RunDir``), read back by everything else (``load_run``).

Layout (docs/dev/CONTRACTS.md)::

    RUN/config.yaml spec.yaml classes.json data.json skipped.txt metrics.jsonl status.json runtime.json
    RUN/checkpoints/{last,best}.safetensors + .json, resume.safetensors
    RUN/cache/  (derived results, safe to delete: ``cache_file``)

>>> run = load_run("runs/lenet")                      # doctest: +SKIP
>>> run.model(run.preprocess(images)).argmax(1)       # doctest: +SKIP
>>> info = read_run_info("runs/lenet")                # doctest: +SKIP
>>> info.weights_file                                 # doctest: +SKIP
PosixPath('runs/lenet/checkpoints/best.safetensors')

Importing this module does not import torch: ``read_run_info`` reads and checks everything but the
weights without it (a report served from its cache needs no model); ``load_run`` imports it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from cnnlab.errors import CnnlabError, RunError
from cnnlab.train.config import TrainConfig
from cnnlab.utils.io import atomic_write_text
from cnnlab.utils.paths import missing_path_hint
from cnnlab.utils.safe_yaml import read_yaml

if TYPE_CHECKING:
    import torch

    from cnnlab.analysis import Analysis
    from cnnlab.spec import Spec

REQUIRED = ("config.yaml", "spec.yaml", "classes.json", "data.json")
CACHE = "cache"  # RUN/cache/: results derived from the run that may be deleted at any time


def cache_file(run_path: str | os.PathLike[str], name: str) -> Path:
    """``RUN/cache/NAME``: where a derived, disposable result of the run is kept (e.g. the report's evaluation)."""
    return Path(run_path) / CACHE / name


class RunDir:
    """Writes one run folder. Every file is written atomically; ``metrics.jsonl`` is appended."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.checkpoints = self.path / "checkpoints"

    @staticmethod
    def default_path(name: str, root: str | os.PathLike[str] = "runs") -> Path:
        """``runs/<name>``, or ``runs/<name>-2``, ``-3``... when taken."""
        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
        base = Path(root) / safe
        candidate, n = base, 1
        while candidate.exists() and any(candidate.iterdir()):
            n += 1
            candidate = base.with_name(f"{safe}-{n}")
        return candidate

    def check_fresh(self) -> None:
        """Refuse to mix a new run into a folder that already holds one (the message names the way on)."""
        if (self.path / "status.json").exists() or (self.checkpoints / "last.safetensors").exists():
            if not (self.checkpoints / "resume.safetensors").exists():
                raise RunError(
                    f"{self.path} already holds a run that stopped before its first checkpoint; start it again "
                    f"from the beginning with `cnnlab train {self.path} --resume` (same data and options), or "
                    "choose another --out")
            raise RunError(
                f"{self.path} already holds a run; continue it with `cnnlab train {self.path} --resume` "
                "or choose another --out"
            )

    def create(self) -> None:
        """Make a fresh folder; refuse to mix a new run into an existing one."""
        self.check_fresh()
        self.checkpoints.mkdir(parents=True, exist_ok=True)
        (self.path / "metrics.jsonl").unlink(missing_ok=True)

    def write_setup(self, config: TrainConfig, spec: dict[str, Any], classes: list[str], data: dict[str, Any]) -> None:
        atomic_write_text(self.path / "config.yaml", config.to_yaml())
        atomic_write_text(self.path / "spec.yaml", yaml.safe_dump(spec, sort_keys=False))
        atomic_write_text(self.path / "classes.json", json.dumps(list(classes), ensure_ascii=False) + "\n")
        atomic_write_text(self.path / "data.json", json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def write_runtime(self, runtime: dict[str, Any]) -> None:
        """``runtime.json``: how this process computes (threads and why, device); rewritten on resume."""
        atomic_write_text(self.path / "runtime.json", json.dumps(runtime) + "\n")

    def append_metrics(self, row: dict[str, Any]) -> None:
        with open(self.path / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def truncate_metrics(self, epochs_done: int) -> None:
        """On resume: keep only the rows of epochs that the resumed checkpoint includes."""
        rows = [r for r in read_metrics(self.path) if int(r.get("epoch", 0)) <= epochs_done]
        atomic_write_text(self.path / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in rows))

    def set_status(self, state: str, epoch: int, **extra: Any) -> None:
        payload = {"state": state, "epoch": epoch, "pid": os.getpid(), **extra}
        atomic_write_text(self.path / "status.json", json.dumps(payload) + "\n")


def read_metrics(path: Path) -> list[dict[str, Any]]:
    file = path / "metrics.jsonl"
    if not file.exists():
        return []
    rows = []
    for line in file.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by a crash: ignore it
            continue
    return rows


@dataclass
class RunInfo:
    """Everything about a run but its model: what ``load_run`` reads and checks before the weights
    (no torch needed). ``weights_file``: the ``which`` checkpoint that ``load_run`` would load."""

    path: Path
    spec: Spec
    classes: list[str]
    config: TrainConfig
    mean: tuple[float, ...]
    std: tuple[float, ...]
    input_shape: tuple[int, int, int]
    resize: str
    data: dict[str, Any]
    metrics: list[dict[str, Any]]
    status: dict[str, Any]
    which: str = "best"

    @property
    def weights_file(self) -> Path:
        return self.path / "checkpoints" / f"{self.which}.safetensors"


@dataclass
class Run(RunInfo):
    """A trained run, ready to use: the model in eval mode with its weights, plus everything about it
    (the ``RunInfo`` fields; ``model`` and ``checkpoint`` are keyword-only)."""

    model: torch.nn.Module = field(kw_only=True)
    checkpoint: dict[str, Any] = field(default_factory=dict, kw_only=True)

    @functools.cached_property
    def analysis(self) -> Analysis:
        from cnnlab.analysis import analyze

        return analyze(self.spec)

    @property
    def device(self) -> torch.device:
        return next(iter(self.model.parameters())).device

    def preprocess(self, images: np.ndarray) -> torch.Tensor:
        """uint8 ``(N, C, H, W)`` -> float32 ``(x/255 - mean)/std`` on the model's device."""
        from cnnlab.data.normalise import normalise

        return normalise(images, self.mean, self.std, self.device)  # (N, C, H, W) float32


def read_run_info(path: str | os.PathLike[str], which: str = "best") -> RunInfo:
    """Read and check a run folder's spec, config, classes, normalisation, metrics and status, and that
    its ``which`` checkpoint exists (not its contents: ``load_run`` reads those)."""
    from cnnlab.spec import load_spec
    from cnnlab.train import runfiles

    root = Path(path)
    if root.is_file():
        from cnnlab.train.checkpoint import refuse_pickle

        refuse_pickle(root)  # a torch.save/pickle file: refused, with the reason
        raise RunError(f"{root} is a file; pass the run folder that `cnnlab train` wrote (it holds config.yaml "
                       "and checkpoints/), not a single checkpoint file")
    _check_folder(root, which)
    config = TrainConfig.from_dict(runfiles.check_config(_read_yaml(root / "config.yaml"), root / "config.yaml"),
                                   where=str(root / "config.yaml"))
    try:
        spec = load_spec(_read_yaml(root / "spec.yaml"))
    except CnnlabError as exc:
        raise RunError(f"{root / 'spec.yaml'}: {exc}") from None
    from cnnlab.analysis import analyze

    classes = runfiles.check_classes(_read_json(root / "classes.json"), analyze(spec).num_classes,
                                     str(root / "classes.json"))
    data = _read_json(root / "data.json")
    mean, std, input_shape = runfiles.check_data_info(data, tuple(spec.input), str(root / "data.json"))
    status = _read_json(root / "status.json") if (root / "status.json").exists() else {}
    return RunInfo(
        path=root, spec=spec, classes=list(classes), config=config, mean=mean, std=std,
        input_shape=input_shape, resize=str(data.get("resize", "crop")), data=data,
        metrics=read_metrics(root), status=status, which=which,
    )


def load_run(path: str | os.PathLike[str], which: str = "best", device: str | torch.device = "cpu") -> Run:
    """Load a run folder: its spec, config, classes, normalisation and the ``which`` checkpoint."""
    from cnnlab.model import build
    from cnnlab.train import runfiles
    from cnnlab.train.checkpoint import read_weights

    info = read_run_info(path, which)
    root = info.path
    weights, meta = read_weights(root / "checkpoints" / which)
    runfiles.check_finite(weights, root / "checkpoints" / f"{which}.safetensors")
    model = build(info.spec)
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise RunError(f"{root}/checkpoints/{which}.safetensors does not match spec.yaml: {exc}") from None
    model.to(device).eval()
    fields = {f.name: getattr(info, f.name) for f in dataclasses.fields(RunInfo)}
    return Run(**fields, model=model, checkpoint=meta)


def read_resumable(folder: Path) -> tuple[TrainConfig, Spec, str | None]:
    """(config, spec, recorded data source) of a run folder to resume; reads only, writes nothing."""
    from cnnlab.spec import load_spec
    from cnnlab.train import runfiles

    if not folder.is_dir():
        raise RunError(f"cannot resume {folder}: no such folder; start a run with `cnnlab train SPEC --data DATA --out {folder}`")
    missing = [n for n in REQUIRED if not (folder / n).is_file()]
    if missing:
        raise RunError(f"cannot resume {folder}: {', '.join(missing)} missing (the run stopped before it was set up, "
                       "or files were deleted); start it afresh with `cnnlab train SPEC --data DATA --out "
                       f"{folder}` after removing the folder, or restore the files")
    cfg_path = folder / "config.yaml"
    config = TrainConfig.from_dict(runfiles.check_config(_read_yaml(cfg_path), cfg_path), where=str(cfg_path))
    try:
        spec = load_spec(_read_yaml(folder / "spec.yaml"))
    except CnnlabError as exc:
        raise RunError(f"{folder / 'spec.yaml'}: {exc}; restore the run's own spec.yaml") from None
    data = _read_json(folder / "data.json")
    runfiles.check_data_info(data, tuple(spec.input), str(folder / "data.json"))
    source = data.get("source") if isinstance(data.get("source"), str) else None
    return config, spec, source


def _shape(values: Any) -> tuple[int, int, int]:
    c, h, w = (int(v) for v in values)
    return (c, h, w)


def _check_folder(root: Path, which: str) -> None:
    if which not in ("best", "last"):
        raise RunError(f"checkpoint {which!r} is not one of: best, last")
    if not root.is_dir():
        raise RunError(f"run folder {root} does not exist{missing_path_hint(root)}; train one with `cnnlab train SPEC --data DATA --out {root}`")
    missing = [name for name in REQUIRED if not (root / name).is_file()]
    if missing:
        raise RunError(f"{root} is not a complete run folder: missing {', '.join(missing)}")
    target = root / "checkpoints" / f"{which}.safetensors"
    if target.exists():
        return
    # imports torch: only on this error path
    from cnnlab.train.checkpoint import PICKLE_SUFFIXES, refuse_pickle

    ckpt = root / "checkpoints"
    pickles = [p for p in ckpt.glob("*") if p.suffix.lower() in PICKLE_SUFFIXES] if ckpt.is_dir() else []
    if pickles:
        refuse_pickle(pickles[0])
    raise RunError(f"{root} has no {which} checkpoint yet (checkpoints/{which}.safetensors); "
                   "it is written at the end of the first epoch")


def _read_yaml(path: Path) -> Any:
    try:
        return read_yaml(path)
    except (OSError, yaml.YAMLError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"cannot read {path}: {exc}") from None
