"""Built-in paper studies (``cnnlab study NAME``): a named set of sweeps with fixed points and seeds,
an analysis of their results against a paper's claim, and a self-contained page (``study.html``).
May import every library package and ``sweep`` (each arm is a ``cnnlab.sweep`` grid); only ``cli`` is above it.

>>> from cnnlab.studies import get_study
>>> get_study("increase-batch").short
'Smith et al. 2017'
"""

from __future__ import annotations

from cnnlab.utils.lazy import lazy_exports

_EXPORTS = {
    "STUDIES": "cnnlab.studies.defs",
    "Study": "cnnlab.studies.defs",
    "Arm": "cnnlab.studies.defs",
    "Plan": "cnnlab.studies.defs",
    "get_study": "cnnlab.studies.defs",
    "planned_updates": "cnnlab.studies.defs",
    "run_study": "cnnlab.studies.run",
    "load_study_result": "cnnlab.studies.run",
    "summarise": "cnnlab.studies.analysis",
    "write_study_page": "cnnlab.studies.run",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
