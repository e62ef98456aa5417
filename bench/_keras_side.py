"""The Keras side of ``bench/vs_keras_fit.py``: a long-lived process that answers training requests.

Runs in the Keras virtual environment (no cnnlab, no torch). Started as
``KERAS_PYTHON bench/_keras_side.py --threads 2``; reads one JSON request per line on stdin and answers
one JSON line on stdout:

    {"net": "keras-mnist", "params": 34826, "data": "/tmp/x.npz", "epochs": 3, "batch": 128}
    -> {"epoch_seconds": [...], "images": 12800, "framework": "keras 3.15.1 / tensorflow 2.21.0"}

Each request builds a fresh model (``_keras_nets.build``, parameter count asserted), compiles it with
AdamW and sparse cross-entropy from logits (accuracy as a metric), and runs ``model.fit`` over the
arrays in ``data`` (``x`` float32 NHWC, already normalised exactly as cnnlab normalises; ``y`` int64),
shuffled, no validation, timing each epoch with a callback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, required=True)
    args = ap.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    import _keras_nets
    import keras

    framework = f"keras {keras.__version__} / tensorflow {tf.__version__}"
    cache: dict[str, Any] = {}
    out = sys.stdout
    sys.stdout = sys.stderr  # anything Keras prints must not mix with the answers
    for line in sys.stdin:
        req = json.loads(line)
        if req.get("quit"):
            break
        if req["data"] not in cache:
            with np.load(req["data"]) as z:
                cache[req["data"]] = (z["x"], z["y"])
        x, y = cache[req["data"]]
        keras.utils.set_random_seed(int(req.get("seed", 0)))
        model = _keras_nets.build(keras, req["net"], req.get("params"))
        model.compile(optimizer=keras.optimizers.AdamW(learning_rate=1e-3),
                      loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
        timer = _timer(keras)
        model.fit(x, y, batch_size=int(req["batch"]), epochs=int(req["epochs"]), shuffle=True, verbose=0,
                  callbacks=[timer])
        out.write(json.dumps({"epoch_seconds": timer.times, "images": int(len(x)), "framework": framework}) + "\n")
        out.flush()


def _timer(keras: Any) -> Any:
    """A callback that records each epoch's seconds in ``.times``."""

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.times: list[float] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            self.times.append(time.perf_counter() - self.t0)

    return Timer()


if __name__ == "__main__":
    main()
