"""Wiring ``--init-from`` into a training run: head size, normalisation, loading, freezing, records.

``train()`` calls ``prepare`` once the data is loaded (the spec's output layer follows the data's
class count; the data is normalised as the weights expect) and ``after_build`` once the model exists
(weights loaded, ``RUN/init_from.json`` written, the table printed; returns the freeze schedule).
``init_table`` renders an ``InitReport`` for ``train`` and ``cnnlab summary --init-from``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from cnnlab.errors import CnnlabError
from cnnlab.i18n import tr
from cnnlab.train.config import TrainConfig
from cnnlab.train.finetune import FreezeSchedule
from cnnlab.train.init_from import InitReport, SourceWeights, adapt_head, apply, resolve


@dataclasses.dataclass
class Prepared:
    spec: Any
    bundle: Any
    weights: SourceWeights | None  # None on resume (the resume state holds the weights)
    data_extra: dict[str, Any]  # added to RUN/data.json ("pretrained": normalisation, input size)
    replace_head: bool = False  # the source's classes are known and differ from the data's


def prepare(spec: Any, cfg: TrainConfig, bundle: Any, resume: bool, run_path: Path, progress: Any) -> Prepared:
    """Resolve SOURCE, fit the head to the data's classes, normalise the data as the weights expect."""
    if not cfg.init_from:
        return Prepared(spec, bundle, None, {})
    if resume:  # the weights come from the resume state; the normalisation from the run's data.json
        recorded = json.loads((run_path / "data.json").read_text(encoding="utf-8")).get("pretrained")
        return Prepared(spec, _normalise(bundle, recorded), None, {"pretrained": recorded} if recorded else {})
    show = progress.mode.value != "quiet"
    weights = resolve(cfg.init_from, progress=show)
    spec, old = adapt_head(spec, len(bundle.classes))
    if old is not None:
        progress.info("train.init.head", old=old, new=len(bundle.classes))
    replace_head = weights.classes is not None and list(weights.classes) != list(bundle.classes)
    if replace_head and old is None:
        progress.info("train.init.head_classes", source=weights.source, theirs=_names(weights.classes),
                      ours=_names(bundle.classes))
    recorded = weights.preprocessing()
    if recorded is not None:
        _note_size(weights, spec, progress)
        progress.info("train.init.normalise", source=weights.source,
                      mean=_fmt(weights.mean), std=_fmt(weights.std))
    extra = {"pretrained": recorded} if recorded else {}
    return Prepared(spec, _normalise(bundle, recorded), weights, extra, replace_head)


def _names(classes: Any) -> str:
    names = [str(c) for c in classes]
    return ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")


def _normalise(bundle: Any, recorded: dict[str, Any] | None) -> Any:
    if not recorded:
        return bundle
    mean, std = tuple(recorded["mean"]), tuple(recorded["std"])
    if len(mean) != len(bundle.mean):
        raise CnnlabError(f"--init-from {recorded['source']}: its weights expect {len(mean)}-channel images "
                          f"but the data has {len(bundle.mean)} channels; use a spec/data with {len(mean)} channels")
    return dataclasses.replace(bundle, mean=mean, std=std)


def _note_size(weights: SourceWeights, spec: Any, progress: Any) -> None:
    size = weights.input_size
    if size and tuple(size[1:]) != tuple(spec.input[1:]):
        progress.info("train.init.size", source=weights.source, trained=f"{size[1]}x{size[2]}",
                      used=f"{spec.input[1]}x{spec.input[2]}")


def _fmt(values: Any) -> str:
    return "(" + ", ".join(f"{v:.3f}" for v in values) + ")"


def after_build(raw: torch.nn.Module, cfg: TrainConfig, prepared: Prepared, run_dir: Any, progress: Any,
                dist: Any) -> FreezeSchedule | None:
    """Load the weights (new runs), record and print what happened; the freeze schedule (or None)."""
    if not cfg.init_from:
        return None
    if cfg.freeze_epochs and dist.distributed:
        raise CnnlabError("--freeze-epochs with --devices > 1 is not supported yet (DDP needs every parameter "
                          "to train in every step); use --freeze-epochs 0, or train on one device")
    schedule = FreezeSchedule(raw, int(cfg.freeze_epochs or 0))
    if prepared.weights is None:
        return schedule
    report = apply(raw, prepared.weights, prepared.replace_head)
    if dist.is_main:
        from cnnlab.utils.io import atomic_write_text

        atomic_write_text(run_dir.path / "init_from.json", json.dumps(report.to_dict(), indent=2) + "\n")
    for line in init_table(report, raw, schedule, progress.lang):
        progress.info("train.init.line", line=line)
    return schedule


def init_table(report: InitReport, raw: Any, schedule: FreezeSchedule | None, lang: str) -> list[str]:
    """Lines: one row per spec layer with tensors (kind, loaded/replaced/fresh, parameters, frozen?)."""
    analysis = getattr(raw, "analysis", None)
    epochs = schedule.freeze_epochs if schedule else 0
    frozen_head = tr("train.init.col_frozen", lang, n=epochs) if epochs else ""
    head = [tr("train.init.col_layer", lang), tr("train.init.col_kind", lang), tr("train.init.col_weights", lang),
            tr("train.init.col_params", lang)] + ([frozen_head] if epochs else [])
    rows = []
    for e in report.by_layer():
        i = e["layer"]
        kind = analysis.layers[i].kind if analysis is not None and i is not None and i < len(analysis.layers) else "-"
        row = [str(i), str(kind), tr(f"train.init.{e['status']}", lang), f"{e['numel']:,}"]
        if epochs:
            row.append(tr("train.init.yes", lang) if schedule and schedule.is_frozen(f"layers.{i}", 0) else "")
        rows.append(row)
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(len(head))]
    fmt = "  ".join(f"{{:{'>' if c in (0, 3) else '<'}{w}}}" for c, w in enumerate(widths))
    counts = report.counts()
    lines = [tr("train.init.title", lang, source=report.source, kind=report.kind, **counts)]
    lines += [fmt.format(*head), *(fmt.format(*r) for r in rows)]
    if report.unused:
        lines.append(tr("train.init.unused", lang, n=len(report.unused), names=", ".join(report.unused[:3])))
    if schedule is not None:
        trainable, frozen = schedule.counts(0)
        all_params = trainable + frozen
        lines.append(tr("train.init.counts", lang, trainable=trainable, frozen=frozen, total=all_params,
                        epochs=epochs))
    return lines
