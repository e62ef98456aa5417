"""Keras 3 (TensorFlow backend) training throughput on the keras-mnist network, for comparison.

Same network as cnnlab's bundled ``keras-mnist`` (keras.io "Simple MNIST convnet", 34,826
parameters), same data (MNIST train, 60,000 images in memory), batch 128, AdamW. This script needs
TensorFlow and Keras, which cnnlab does not depend on; run it from a separate virtual environment:

    python3 -m venv /tmp/kenv && /tmp/kenv/bin/pip install tensorflow-cpu keras numpy
    CNNLAB_DATA=../shared/data /tmp/kenv/bin/python bench/keras_baseline.py --epochs 3

It prints images/s per epoch and their median and best (on this 2-core VM single Keras epochs vary
between about 1,500 and 2,800 images/s, the first one included, so both are reported) and writes
``bench/results/keras_baseline.json``.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def read_idx(path: Path) -> np.ndarray:
    with gzip.open(path, "rb") as fh:
        raw = fh.read()
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--limit", type=int, default=60000, help="training images used")
    args = parser.parse_args()

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras  # noqa: PLC0415  (optional, heavy)
    import tensorflow as tf  # noqa: PLC0415

    root = Path(os.environ.get("CNNLAB_DATA", Path.home() / ".cache" / "cnnlab")) / "mnist"
    x = read_idx(root / "train-images-idx3-ubyte.gz")[: args.limit].astype("float32")[..., None] / 255.0
    y = read_idx(root / "train-labels-idx1-ubyte.gz")[: args.limit].astype("int64")

    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            keras.layers.Conv2D(32, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Conv2D(64, kernel_size=(3, 3), activation="relu"),
            keras.layers.MaxPooling2D(pool_size=(2, 2)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.5),
            keras.layers.Dense(10),
        ]
    )
    assert model.count_params() == 34826, model.count_params()
    model.compile(
        optimizer=keras.optimizers.AdamW(learning_rate=1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            self.times.append(time.perf_counter() - self.t0)

    timer = Timer()
    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, shuffle=True, verbose=0, callbacks=[timer])
    rates = [len(x) / t for t in timer.times]
    import statistics  # noqa: PLC0415

    result = {
        "framework": f"keras {keras.__version__} / tensorflow {tf.__version__}",
        "net": "keras-mnist (34,826 params)",
        "batch": args.batch,
        "images": len(x),
        "epoch_seconds": [round(t, 3) for t in timer.times],
        "images_per_s_per_epoch": [round(r, 1) for r in rates],
        "images_per_s_median": round(statistics.median(rates), 1),
        "images_per_s_best": round(max(rates), 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    print(json.dumps(result, indent=2))
    out = Path(__file__).parent / "results" / "keras_baseline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
