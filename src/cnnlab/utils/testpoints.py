"""Named points in the training process where a test can stop it, to kill it there (exact-resume tests).

Inert unless ``CNNLAB_POINTS`` names a file: each point then appends its tag to that file, and the
point whose tag equals ``CNNLAB_PAUSE_AT`` announces ``paused <tag>`` and sleeps until the process
is killed. Costs one dictionary look-up per point otherwise.

>>> point("step", epoch=0, batch=1)   # no environment set: does nothing
"""

from __future__ import annotations

import os
import time


def point(name: str, **where: object) -> None:
    log = os.environ.get("CNNLAB_POINTS")
    if not log:
        return
    tag = " ".join([name] + [f"{k}={v}" for k, v in where.items()])
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(tag + "\n")
        if tag == os.environ.get("CNNLAB_PAUSE_AT"):
            fh.write(f"paused {tag}\n")
            fh.flush()
            os.fsync(fh.fileno())
            while True:  # the test kills the process here
                time.sleep(60)
