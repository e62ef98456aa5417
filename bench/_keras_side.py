"""The Keras side of ``bench/vs_keras_predict.py``: a long-lived process speaking JSON lines.

Run by the bench script in the Keras venv (``python3.11 -m venv V && V/bin/pip install
"tensorflow-cpu==2.21.*" "keras==3.15.*"``); not meant to be run by hand. Reads MNIST's test
images with numpy from ``$CNNLAB_DATA/mnist/t10k-images-idx3-ubyte.gz`` (no downloads), scaled
to [0, 1] float32 NHWC once, zero-padded to 32x32 for lenet5 (cnnlab's input for lenet5).

Protocol: the first stdin line is ``{"threads": T}``; each following line
``{"net": "keras-mnist", "batch": 256, "reps": 2}`` is answered with one stdout line
``{"img_s": [...], "params": P}``: ``model.predict`` over all test images ``reps`` times, after a
warm-up predict (tracing) the first time a (net, batch) pair is seen.
"""

from __future__ import annotations

import gzip
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def read_images(data: Path) -> np.ndarray:
    with gzip.open(data / "mnist" / "t10k-images-idx3-ubyte.gz") as fh:
        raw = fh.read()
    n, h, w = (int.from_bytes(raw[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(raw, np.uint8, offset=16).reshape(n, h, w, 1)  # (N, 28, 28, 1)


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    threads = int(json.loads(sys.stdin.readline())["threads"])
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras

    sys.path.insert(0, str(Path(__file__).parent))
    import _keras_nets as nets

    images = read_images(Path(os.environ.get("CNNLAB_DATA", "data")))
    x28 = images.astype(np.float32) / 255.0  # (N, 28, 28, 1)
    inputs = {"keras-mnist": x28, "lenet5": np.pad(x28, ((0, 0), (2, 2), (2, 2), (0, 0)))}  # (N, 32, 32, 1)
    models: dict[str, Any] = {}
    warm: set[tuple[str, int]] = set()
    print(json.dumps({"ready": True, "keras": keras.__version__, "tensorflow": tf.__version__}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        name, batch, reps = req["net"], int(req["batch"]), int(req.get("reps", 1))
        if name not in models:
            models[name] = nets.build(name, keras)
        model, x = models[name], inputs[name]
        if (name, batch) not in warm:
            model.predict(x, batch_size=batch, verbose=0)
            warm.add((name, batch))
        rates = []
        for _ in range(reps):
            t = time.perf_counter()
            model.predict(x, batch_size=batch, verbose=0)
            rates.append(len(x) / (time.perf_counter() - t))
        print(json.dumps({"img_s": rates, "params": int(model.count_params())}), flush=True)


if __name__ == "__main__":
    main()
