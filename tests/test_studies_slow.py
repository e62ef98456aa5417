"""Whole studies, end to end on tiny generated data (10 classes of bars, 28x28): every arm trains over
its seeds through the sweep engine, every run is measured on the test split, ``study.json`` and
``study.html`` agree, the measured updates are the planned ones, and one run's test accuracy is
recomputed with plain torch.

Run: PYTHONPATH=src .venv/bin/python -m pytest -q -m slow tests/test_studies_slow.py   (several minutes)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from _study_data import bars_folder
from cnnlab.studies import STUDIES, get_study, run_study
from cnnlab.studies.defs import QUICK, Size

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bars_folder(tmp_path_factory.mktemp("bars") / "img", per_class=24)


def _tiny(name: str):
    s = get_study(name)
    return dataclasses.replace(s, sizes={QUICK: Size(None, 3, max(2, s.min_seeds), 0.1, batch=8, large=64)})


@pytest.mark.parametrize("name", list(STUDIES))
def test_a_tiny_study_writes_consistent_json_and_page(name: str, data: Path, tmp_path: Path) -> None:
    import torch

    from cnnlab.sweep.results import load_sweep
    from cnnlab.sweep.trial import load_sweep_data
    from cnnlab.train import load_run

    study = _tiny(name)
    out = tmp_path / name
    doc = run_study(study, str(data), quick=True, out=out, quiet=True, processes=False)
    saved = json.loads((out / "study.json").read_text(encoding="utf-8"))
    html = (out / "study.html").read_text(encoding="utf-8")
    plan = study.plan(QUICK)
    assert len(saved["runs"]) == plan.trials() == len(doc["runs"])
    assert saved["summary"]["verdict"]["en"] in html.replace("&#x27;", "'")
    from cnnlab.i18n import percent, tr

    assert tr(f"study.claim.{name}", "en") in html.replace("&#x27;", "'")
    for arm, st in saved["summary"]["arms"].items():
        assert f'data-arm="{arm}"' in html and percent(st["test_acc_mean"]) in html
    for r in saved["runs"]:
        assert r["updates"] == r["planned_updates"], r  # the trainer trained what the study planned
        assert len(r["curve"]) == r["epochs"]
    # one run's test accuracy, again with plain torch on the normalised test images
    r = saved["runs"][-1]
    run = load_run(out / r["run"], "last")
    bundle = load_sweep_data(load_sweep(out / "arms" / r["arm"]).meta)
    x = (torch.from_numpy(bundle.test.images).float() / 255 - torch.tensor(run.mean).view(1, -1, 1, 1)) \
        / torch.tensor(run.std).view(1, -1, 1, 1)
    with torch.no_grad():
        pred = run.model.float().eval()(x).argmax(1).numpy()
    labels = np.array([run.classes.index(bundle.classes[i]) for i in bundle.test.labels])
    assert r["test_acc"] == pytest.approx(float((pred == labels).mean()))
    assert bundle.test.images.shape[0] == saved["arms"][0]["test_images"]
