"""Build a PyTorch module from a spec (``build``) and summarise any ``nn.Module`` (``summary``).

Owns the torch layers cnnlab adds. May import: ``spec``, ``analysis``, ``errors``, ``i18n``, ``utils``.
"""

from __future__ import annotations

from cnnlab.model.build import CnnlabNet, activation_module, build, model_device
from cnnlab.model.summary import summary

__all__ = ["CnnlabNet", "activation_module", "build", "model_device", "summary"]
