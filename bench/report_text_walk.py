"""A/B: Grad-CAM + mistakes pictures of a report drawn with the old text walk and with ``text_artists``.

    .venv/bin/python bench/report_text_walk.py RUN [--rounds 5]

In one process, rounds alternate the reference walk (``fig.findobj(Text)``, which makes matplotlib
create every tick of every axis-off image cell) and ``cnnlab.visualize.fit.text_artists``; each round
prints the CPU seconds (``time.process_time``) of drawing and encoding both pictures, and the 1-minute
load; the medians close. The PNG bytes are checked equal. RUN: a run folder whose data can be reloaded
(e.g. the keras-mnist run of ``bench/report_speed.py``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from matplotlib.text import Text

from cnnlab.inference.dataset import validation_split
from cnnlab.report import collect, figures
from cnnlab.train import load_run
from cnnlab.visualize import fit


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    run = load_run(args.run)
    images, _ = validation_split(run, "en")
    res = collect._evaluate(run, images)
    chosen = figures.cam_examples(res)
    walks: dict[str, Any] = {"findobj (old)": lambda fig: fig.findobj(Text), "text_artists (new)": fit.text_artists}

    def draw() -> list[bytes]:
        pics = [figures.cam_picture(run, images.images, res, chosen, "en"),
                figures.mistakes_picture(images.images, res, "en")]
        return [p.png for p in pics if p is not None]

    draw()  # warm-up
    cpu: dict[str, list[float]] = {k: [] for k in walks}
    pngs: dict[str, list[bytes]] = {}
    for r in range(1, max(3, args.rounds) + 1):
        for name, walk in walks.items():
            fit.text_artists = walk  # fonts.py imports it from fit at call time
            t = time.process_time()
            pngs[name] = draw()
            cpu[name].append(time.process_time() - t)
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.3f} CPU s" for k, v in cpu.items())
              + f" (load {os.getloadavg()[0]:.2f})", flush=True)
    same = len(set(map(tuple, pngs.values()))) == 1
    print("median: " + ", ".join(f"{k} {statistics.median(v):.3f} CPU s" for k, v in cpu.items())
          + f"; PNG bytes equal: {same}")


if __name__ == "__main__":
    main()
