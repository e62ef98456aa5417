"""Keras 3 builders for cnnlab's bundled nets, layer for layer (one shared module for every Keras benchmark).

Each builder returns an uncompiled ``keras.Sequential`` whose layers are those of the cnnlab spec of the
same name (``src/cnnlab/zoo/NAME.yaml``): same kernels, strides, padding ('valid'), activations, pooling,
dropout rate and dense sizes, so the parameter counts are equal. This module imports only Keras (it
runs in the Keras virtual environment, which has no cnnlab); the benchmark that drives it passes
cnnlab's own count (``cnnlab.analysis.analyze(spec).trainable_params``) and ``build`` asserts it.

Layout: Keras on CPU is channels-last (NHWC); the input is ``(H, W, C)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def keras_mnist(keras: Any) -> Any:
    """keras-mnist: conv 32 3x3 relu, max-pool 2, conv 64 3x3 relu, max-pool 2, flatten, dropout 0.5,
    dense 10 (logits) — keras.io "Simple MNIST convnet", 34,826 parameters."""
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dropout(0.5),
        layers.Dense(10),
    ], name="keras_mnist")


def lenet5(keras: Any) -> Any:
    """lenet5 (modern): 32x32 input, conv 6 5x5 relu, max-pool 2, conv 16 5x5 relu, max-pool 2, flatten,
    dense 120 relu, dense 84 relu, dense 10 (logits) — 61,706 parameters."""
    layers = keras.layers
    return keras.Sequential([
        keras.Input(shape=(32, 32, 1)),
        layers.Conv2D(6, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(16, 5, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(120, activation="relu"),
        layers.Dense(84, activation="relu"),
        layers.Dense(10),
    ], name="lenet5")


BUILDERS: dict[str, Callable[[Any], Any]] = {"keras-mnist": keras_mnist, "lenet5": lenet5}


def build(keras: Any, net: str, expected_params: int | None = None) -> Any:
    """The Keras model for cnnlab net ``net``; raises ``AssertionError`` unless its parameter count is
    ``expected_params`` (cnnlab's analysis count, passed in by the caller)."""
    model = BUILDERS[net](keras)
    if expected_params is not None:
        got = model.count_params()
        assert got == expected_params, f"Keras {net} has {got:,} parameters, cnnlab's analysis says {expected_params:,}"
    return model
