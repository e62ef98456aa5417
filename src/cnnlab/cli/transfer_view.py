"""``cnnlab summary NET --init-from SOURCE``: which layers load weights, which stay frozen while fine-tuning.

Imported by the summary handler only when ``--init-from`` is given (it needs torch).
"""

from __future__ import annotations

import json
from typing import Any


def _matched(spec: Any, source: str, freeze_epochs: int) -> tuple[Any, Any, Any]:
    """(model, InitReport, FreezeSchedule) for ``spec`` started from ``source``."""
    import torch

    from cnnlab.errors import CnnlabError
    from cnnlab.model import build
    from cnnlab.train.finetune import FreezeSchedule
    from cnnlab.train.init_from import apply, resolve

    if freeze_epochs < 0:
        raise CnnlabError(f"--freeze-epochs must be >= 0; received {freeze_epochs}")
    torch.manual_seed(0)
    model = build(spec)
    report = apply(model, resolve(source))
    return model, report, FreezeSchedule(model, freeze_epochs)


def print_init(spec: Any, source: str, freeze_epochs: int, lang: str) -> None:
    """The table: per layer, loaded / replaced / fresh, parameters, frozen in the first epochs."""
    from cnnlab.train.transfer import init_table

    model, report, schedule = _matched(spec, source, freeze_epochs)
    print()
    print("\n".join(init_table(report, model, schedule, lang)))


def with_init_json(analysis_json: str, spec: Any, source: str, freeze_epochs: int) -> str:
    """The analysis JSON with an ``init_from`` entry (per-layer status, frozen layers, parameter counts)."""
    _, report, schedule = _matched(spec, source, freeze_epochs)
    trainable, frozen = schedule.counts(0)
    init = report.to_dict()
    init.pop("tensors")
    init.update(freeze_epochs=freeze_epochs, trainable_params=trainable, frozen_params=frozen,
                frozen_layers=sorted({i for e in report.by_layer() if (i := e["layer"]) is not None
                                      and schedule.is_frozen(f"layers.{i}", 0)}))
    data = json.loads(analysis_json)
    data["init_from"] = init
    return json.dumps(data, indent=2, ensure_ascii=False)
