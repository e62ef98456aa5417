"""Keras builders of cnnlab's bundled nets, layer for layer, for the ``bench/vs_keras_*`` scripts.

Run only in the Keras venv (made with ``python3.11 -m venv V && V/bin/pip install
"tensorflow-cpu==2.21.*" "keras==3.15.*"``). Each builder returns a model whose parameter count
equals cnnlab's for the same net (``PARAMS``); the scripts assert it.
"""

from __future__ import annotations

from typing import Any

PARAMS = {"keras-mnist": 34_826, "lenet5": 61_706}  # sum(p.numel()) of cnnlab.build(name)
INPUT_HW = {"keras-mnist": 28, "lenet5": 32}


def keras_mnist(keras: Any) -> Any:
    """keras.io "Simple MNIST convnet": 2 conv 3x3 + max-pool, dropout, dense 10 (cnnlab ``keras-mnist``)."""
    L = keras.layers
    return keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        L.Conv2D(32, (3, 3), activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(64, (3, 3), activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dropout(0.5), L.Dense(10),
    ])


def lenet5(keras: Any) -> Any:
    """Modern LeNet-5 on 32x32: conv 5x5 (6) + pool, conv 5x5 (16) + pool, dense 120, 84, 10 (cnnlab ``lenet5``)."""
    L = keras.layers
    return keras.Sequential([
        keras.Input(shape=(32, 32, 1)),
        L.Conv2D(6, (5, 5), activation="relu"), L.MaxPooling2D(2),
        L.Conv2D(16, (5, 5), activation="relu"), L.MaxPooling2D(2),
        L.Flatten(), L.Dense(120, activation="relu"), L.Dense(84, activation="relu"), L.Dense(10),
    ])


BUILDERS = {"keras-mnist": keras_mnist, "lenet5": lenet5}


def build(name: str, keras: Any) -> Any:
    """The Keras model for cnnlab net ``name``; raises if its parameter count differs from cnnlab's."""
    model = BUILDERS[name](keras)
    if model.count_params() != PARAMS[name]:
        raise AssertionError(f"Keras {name} has {model.count_params()} parameters, cnnlab's has {PARAMS[name]}")
    return model
