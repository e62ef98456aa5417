"""``cnnlab summary NET --init-from SOURCE``: which layers load weights, which stay frozen while fine-tuning.

Imported by the summary handler only when ``--init-from`` is given (it needs torch).
"""

from __future__ import annotations

import json
import sys
from typing import Any


def print_init(spec: Any, source: str, freeze_epochs: int, lang: str, fmt: str) -> None:
    """Build the network, match SOURCE's tensors to it and print the table (or JSON)."""
    import torch

    from cnnlab.errors import CnnlabError
    from cnnlab.model import build
    from cnnlab.train.finetune import FreezeSchedule
    from cnnlab.train.init_from import apply, resolve
    from cnnlab.train.transfer import init_table

    if freeze_epochs < 0:
        raise CnnlabError(f"--freeze-epochs must be >= 0; received {freeze_epochs}")
    torch.manual_seed(0)
    model = build(spec)
    report = apply(model, resolve(source))
    schedule = FreezeSchedule(model, freeze_epochs)
    if fmt == "json":
        trainable, frozen = schedule.counts(0)
        out = {"init_from": report.to_dict(), "freeze_epochs": freeze_epochs,
               "trainable_params": trainable, "frozen_params": frozen,
               "frozen_layers": sorted({i for e in report.by_layer() if (i := e["layer"]) is not None
                                        and schedule.is_frozen(f"layers.{i}", 0)})}
        out["init_from"].pop("tensors")
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    print()
    print("\n".join(init_table(report, model, schedule, lang)))
