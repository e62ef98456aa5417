"""cnnlab: describe a CNN, understand it before training, train it, and see what it learned.

>>> import cnnlab
>>> a = cnnlab.analyze({"input": [1, 28, 28], "layers": [{"conv": {"filters": 8, "kernel": 3, "padding": 1}},
...                                                       "flatten", {"output": 10}]})
>>> a.total_params
62810

``import cnnlab`` is cheap: names are imported on first use, and the analysis never imports torch.
The packages follow the data flow (docs/dev/ARCHITECTURE.md): spec -> analysis -> model -> data ->
train -> inference -> visualize -> report -> workflows -> cli.
"""

from __future__ import annotations

from cnnlab.utils.lazy import install_api

__version__ = "0.1.0"

# public name -> module that defines it (imported lazily so that `import cnnlab` stays torch-free)
_EXPORTS = {
    "load_spec": "cnnlab.spec",
    "Spec": "cnnlab.spec",
    "analyze": "cnnlab.analysis",
    "Analysis": "cnnlab.analysis",
    "build": "cnnlab.model",
    "summary": "cnnlab.model",
    "list_models": "cnnlab.zoo",
    "load_data": "cnnlab.data",
    "train": "cnnlab.workflows",
    "TrainConfig": "cnnlab.train",
    "load_run": "cnnlab.train",
    "evaluate": "cnnlab.inference",
    "predict": "cnnlab.inference",
    "export": "cnnlab.inference",
    "report": "cnnlab.report",
    "CnnlabError": "cnnlab.errors",
}

# Module paths of earlier releases, kept importable: ``import cnnlab.evaluate`` gives the module that
# now lives in ``cnnlab.inference``, while the attribute ``cnnlab.evaluate`` stays the function.
_MOVED = {
    "cnnlab.evaluate": "cnnlab.inference.evaluation",
    "cnnlab.predict": "cnnlab.inference.prediction",
    "cnnlab.export": "cnnlab.inference.export_onnx",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = install_api(__name__, _EXPORTS, _MOVED)
