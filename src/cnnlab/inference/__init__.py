"""Use a trained run: ``evaluate`` (metrics on labelled images), ``predict`` (new images), ``export`` (ONNX).

Owns the choice of evaluation images (``dataset``). May import: spec, analysis, model, data, train,
errors, i18n, utils.
"""

from __future__ import annotations

from cnnlab.utils.lazy import lazy_exports

_EXPORTS = {
    "evaluate": "cnnlab.inference.evaluation",
    "EvalResult": "cnnlab.inference.evaluation",
    "predict": "cnnlab.inference.prediction",
    "classify": "cnnlab.inference.prediction",
    "Prediction": "cnnlab.inference.prediction",
    "export": "cnnlab.inference.export_onnx",
    "ExportResult": "cnnlab.inference.export_onnx",
    "evaluation_set": "cnnlab.inference.dataset",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
