"""``cnnlab explore``: a local page that shows inside a network, down to the arithmetic of one neuron.

Owns the explore session (torch computations), its Starlette server and the static export.

    from cnnlab.explore import open_explorer, create_app
    ex = open_explorer("runs/mnist")            # a run folder, or a spec (random weights)
    ex.neuron(ex.image_ids()[0], layer=0, channel=3, y=5, x=7)["value"]
"""

from __future__ import annotations

from cnnlab.utils.lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, {
    "Explorer": "cnnlab.explore.session",
    "open_explorer": "cnnlab.explore.session",
    "create_app": "cnnlab.explore.server",
    "serve": "cnnlab.explore.server",
    "export_static": "cnnlab.explore.static_export",
})

__all__ = ["Explorer", "create_app", "export_static", "open_explorer", "serve"]
