"""Built-in paper studies: the arms each study trains, the update counts, the verdicts and the page.

Each definition is checked against the paper's numbers or hand arithmetic; the update count against
the trainer's own batch plan (``cnnlab.train.batches``); the slope of the best learning rate against
numpy's least squares. Fast: no training here (see test_studies_slow.py for whole studies).

Run: PYTHONPATH=src .venv/bin/python -m pytest -q tests/test_studies.py
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.studies import STUDIES, get_study, planned_updates
from cnnlab.studies.analysis import best_slope, summarise
from cnnlab.studies.defs import PAPER_STEPS
from cnnlab.studies.page import render_study_page


def test_increase_batch_arms_differ_only_in_lr_decay_against_batch_growth() -> None:
    for size in ("quick", "full"):
        decay, grow = get_study("increase-batch").plan(size).arms
        assert decay.config["epochs"] == grow.config["epochs"]
        assert decay.config["batch_size"] == grow.config["batch_size"] and decay.config["lr"] == grow.config["lr"]
        # the batch grows by the factor the lr decays by, at the same completed epochs
        assert [e for e, _ in grow.config["batch_schedule"]] == [e for e, _ in decay.config["lr_steps"]]
        assert all(g * d == pytest.approx(1.0) for (_, g), (_, d) in
                   zip(grow.config["batch_schedule"], decay.config["lr_steps"], strict=True))
        assert decay.config["schedule"] == "step" and grow.config["schedule"] == "constant"
        assert not grow.config.get("lr_steps") and not decay.config.get("batch_schedule")


def test_increase_batch_takes_fewer_updates_by_hand_arithmetic() -> None:
    decay, grow = get_study("increase-batch").plan("quick").arms
    assert grow.config["batch_schedule"] == [[2, 5], [4, 5]] and decay.config["batch_size"] == 32
    # 10,000 images, 6 epochs: batch 32 -> 312 steps per epoch (last partial batch dropped);
    # the growing batch: 2 epochs at 32 (312), 2 at 160 (62), 2 at 800 (12)
    assert planned_updates(10_000, 6, 32) == 6 * 312 == 1872
    assert planned_updates(10_000, 6, 32, grow.config["batch_schedule"]) == 2 * 312 + 2 * 62 + 2 * 12 == 772
    assert planned_updates(50, 1, 32) == 2  # fewer than two batches: the partial one is kept (ceil)


@pytest.mark.parametrize("n, epochs, batch, schedule", [(10_000, 6, 32, [(2, 5), (4, 5)]), (57_000, 30, 64, [(10, 5), (20, 5)]),
                                                       (999, 5, 7, [(1, 3), (3, 2)]), (100, 3, 40, [(1, 2)])])
def test_planned_updates_agree_with_the_trainers_batch_plan(n: int, epochs: int, batch: int, schedule: list) -> None:
    from cnnlab.train.batches import BatchPlan

    plan = BatchPlan.build(batch_size=batch, batch_schedule=schedule, epochs=epochs, samples=n)
    assert planned_updates(n, epochs, batch, schedule) == plan.total


def test_batch_vs_lr_grid_spans_factor_two_learning_rates_and_three_batches() -> None:
    plan = get_study("batch-vs-lr").plan("quick")
    (arm,) = plan.arms
    axes = dict(g.split("=") for g in plan.sweep_params(arm))
    batches = [int(v) for v in axes["batch_size"].split(",")]
    lrs = [float(v) for v in axes["lr"].split(",")]
    assert batches == [32, 128, 512] and axes["seed"] == "0"
    assert all(b / a == pytest.approx(2.0) for a, b in zip(lrs, lrs[1:], strict=False))
    assert plan.trials() == 18
    # linear scaling from the smallest batch's middle lr stays on the grid's range for the largest batch
    assert lrs[0] * 512 / 32 >= lrs[-1] / 2 ** 4


def test_ghost_bn_arms_scale_the_lr_by_the_square_root_and_use_ghost_batches() -> None:
    from cnnlab.model import build
    from cnnlab.model.layers import GhostBatchNorm
    from cnnlab.spec import load_spec

    arms = {a.key: a for a in get_study("ghost-bn").plan("full").arms}
    small, sqrt = arms["small"].config, arms["sqrt"].config
    assert sqrt["batch_size"] / small["batch_size"] == 16
    assert sqrt["lr"] == pytest.approx(small["lr"] * 4)  # sqrt(512 / 32) = 4
    assert arms["large"].config["lr"] == small["lr"]
    assert arms["longer"].config["epochs"] > arms["ghost"].config["epochs"]
    ghost = build(load_spec(arms["ghost"].spec))
    plain = build(load_spec(arms["sqrt"].spec))
    ghosts = [m for m in ghost.modules() if isinstance(m, GhostBatchNorm)]
    assert len(ghosts) == 2 and not any(isinstance(m, GhostBatchNorm) for m in plain.modules())
    assert sum(p.numel() for p in ghost.parameters()) == sum(p.numel() for p in plain.parameters())


def test_lenet_1998_full_schedule_has_the_papers_rates_relative_to_the_first() -> None:
    (arm,) = get_study("lenet5-1998").plan("full").arms
    assert arm.spec == "lenet5-1998" and arm.config["epochs"] == 20 and arm.config["schedule"] == "step"
    paper = {0: 0.0005, 2: 0.0002, 5: 0.0001, 8: 0.00005, 12: 0.00001}  # LeCun et al. 1998, Section III-A
    factor, rates = 1.0, {0: 0.0005}
    for epoch, f in arm.config["lr_steps"]:
        factor *= f
        rates[epoch] = 0.0005 * factor
    assert rates == pytest.approx(paper)
    assert [tuple(s) for s in arm.config["lr_steps"]] == PAPER_STEPS
    quick = get_study("lenet5-1998").plan("quick").arms[0].config["lr_steps"]
    assert [e for e, _ in quick] == sorted({e for e, _ in quick}) and quick[-1][0] < 4  # distinct, inside the run


@pytest.mark.parametrize("name", list(STUDIES))
def test_every_arm_is_a_valid_sweep(name: str) -> None:
    from cnnlab.sweep import run_sweep

    for size in ("quick", "full"):
        plan = get_study(name).plan(size)
        for arm in plan.arms:
            space = run_sweep(arm.spec, "unused", plan.sweep_params(arm), config=arm.config, dry_run=True, quiet=True)
            assert space.size() * 1 == plan.trials() // len(plan.arms) or len(plan.arms) > 1


def test_too_few_seeds_and_unknown_names_are_clear_errors() -> None:
    with pytest.raises(CnnlabError, match="at least 2"):
        get_study("increase-batch").plan("quick", seeds=1)
    with pytest.raises(CnnlabError, match="did you mean 'ghost-bn'"):
        get_study("gost-bn")
    assert get_study("batch-vs-lr").plan("quick", seeds=1).seeds == [0]


# ------------------------------------------------------------------ analysis
def _doc(name: str, accs: dict[str, list[float]], updates: dict[str, int], test: int = 10_000) -> dict:
    study = get_study(name)
    plan = study.plan("quick", seeds=len(next(iter(accs.values()))))
    arms = [{"key": a.key, "label": a.label, "config": a.config, "grid": list(a.grid), "spec": "lenet5",
             "train_images": 10_000, "val_images": 3000, "test_images": test} for a in plan.arms]
    runs = [{"arm": k, "seed": i, "params": {"seed": i}, "test_acc": v, "val_acc_best": v, "updates": updates[k],
             "planned_updates": updates[k], "curve": [[1, v - 0.01], [2, v]]}
            for k, vs in accs.items() for i, v in enumerate(vs)]
    doc = {"study": name, "size": "quick", "data": "mnist", "paper": study.paper, "seeds": plan.seeds,
           "limit": 10_000, "epochs": plan.epochs, "arms": arms, "runs": runs, "wall_s": 12.0, "load_avg": 1.5}
    if study.kind != "grid":  # the grid tests set their own runs
        doc["summary"] = summarise(study, doc)
    return doc


def test_increase_batch_verdict_follows_the_standard_error() -> None:
    same = _doc("increase-batch", {"decay": [0.981, 0.984, 0.983], "increase": [0.982, 0.980, 0.985]},
                {"decay": 1872, "increase": 772})
    assert same["summary"]["verdict"]["code"] == "consistent"
    # the seeds' spread (numpy, ddof=1) sets the standard error here: above the binomial floor of 10,000 images
    sa, sb = np.std([0.981, 0.984, 0.983], ddof=1), np.std([0.982, 0.980, 0.985], ddof=1)
    assert same["summary"]["diff_se"] == pytest.approx(math.sqrt(sa ** 2 / 3 + sb ** 2 / 3), abs=2e-6)
    worse = _doc("increase-batch", {"decay": [0.981, 0.984, 0.983], "increase": [0.95, 0.952, 0.949]},
                 {"decay": 1872, "increase": 772})
    assert worse["summary"]["verdict"]["code"] == "fewer_not_same"
    assert "not reproduced" in worse["summary"]["verdict"]["en"].lower()
    assert "não reproduzido" in worse["summary"]["verdict"]["pt"].lower()


def test_best_lr_slope_matches_numpy_least_squares() -> None:
    rng = np.random.default_rng(0)
    batches = [32, 64, 256, 1024]
    lrs = list(np.exp(rng.normal(size=4)))
    assert best_slope(batches, lrs) == pytest.approx(np.polyfit(np.log(batches), np.log(lrs), 1)[0])


@pytest.mark.parametrize("scale, code", [(1.0, "linear"), (0.5, "sqrt"), (0.0, "other")])
def test_grid_verdict_names_the_scaling_the_best_lr_follows(scale: float, code: str) -> None:
    doc = _doc("batch-vs-lr", {"grid": [0.5]}, {"grid": 1})
    lrs = [0.0125 * 2 ** k for k in range(6)]
    runs = []
    for b in (32, 128, 512):
        best = 0.0125 * (b / 32) ** scale
        for lr in lrs:  # validation accuracy peaks at the lr that follows `scale`
            acc = 0.99 - 0.01 * abs(math.log2(lr / best))
            runs.append({"arm": "grid", "seed": 0, "params": {"batch_size": b, "lr": lr, "seed": 0}, "test_acc": acc,
                         "val_acc_best": acc, "updates": 1, "planned_updates": 1, "curve": [[1, acc]]})
    doc["runs"] = runs
    s = summarise(get_study("batch-vs-lr"), doc)
    assert s["verdict"]["code"] == code
    assert s["best"]["512"]["lr"] == pytest.approx(0.0125 * 16 ** scale)


def test_gap_verdicts() -> None:
    base = {"small": [0.985, 0.986], "large": [0.95, 0.951], "sqrt": [0.97, 0.971], "ghost": [0.975, 0.976]}
    closed = _doc("ghost-bn", {**base, "longer": [0.985, 0.9855]}, dict.fromkeys(base.keys() | {"longer"}, 1))
    assert closed["summary"]["verdict"]["code"] == "gap_closed"
    assert closed["summary"]["gaps"]["large"]["gap"] == pytest.approx(0.9855 - 0.9505)
    still = _doc("ghost-bn", {**base, "longer": [0.96, 0.961]}, dict.fromkeys(base.keys() | {"longer"}, 1))
    assert still["summary"]["verdict"]["code"] == "gap_open"


def test_lenet_target_verdict_uses_the_binomial_floor() -> None:
    # one test set of 10,000 at 99.05 %: binomial SE sqrt(.9905*.0095/10000)/sqrt(2) = 0.00069
    met = _doc("lenet5-1998", {"lenet5-1998": [0.9905, 0.9905]}, {"lenet5-1998": 1})
    assert met["summary"]["verdict"]["code"] == "target_met"
    assert met["summary"]["error_se"] == pytest.approx(math.sqrt(0.9905 * 0.0095 / 10_000) / math.sqrt(2), rel=1e-3)
    missed = _doc("lenet5-1998", {"lenet5-1998": [0.975, 0.976]}, {"lenet5-1998": 1})
    assert missed["summary"]["verdict"]["code"] == "target_missed"
    # one seed learned, one stayed at chance: the mean error is "within" its huge noise, which says nothing
    split = _doc("lenet5-1998", {"lenet5-1998": [0.95, 0.0975]}, {"lenet5-1998": 1})
    assert split["summary"]["verdict"]["code"] == "too_noisy"


def test_a_noisy_comparison_is_inconclusive_not_consistent() -> None:
    noisy = _doc("increase-batch", {"decay": [0.98, 0.90], "increase": [0.97, 0.93]}, {"decay": 1872, "increase": 772})
    assert noisy["summary"]["verdict"]["code"] == "too_noisy"
    assert "inconclusive" in noisy["summary"]["verdict"]["en"].lower()


# ------------------------------------------------------------------ page and CLI
@pytest.mark.parametrize("lang, claim_word", [("en", "fewer parameter updates"), ("pt", "menos atualizações")])
def test_page_shows_claim_numbers_and_verdict(lang: str, claim_word: str) -> None:
    doc = _doc("increase-batch", {"decay": [0.9812, 0.9843, 0.9831], "increase": [0.9822, 0.9804, 0.9851]},
               {"decay": 1872, "increase": 772})
    html = render_study_page(doc, lang)
    assert claim_word in html and "Smith, S. L." in html
    sep = "," if lang == "pt" else "."
    for v in (0.9812, 0.9851):  # every per-seed value, in the page's number format
        assert f"{100 * v:.2f}".replace(".", sep) + " %" in html
    mean = sum([0.9812, 0.9843, 0.9831]) / 3
    assert f"{100 * mean:.2f}".replace(".", sep) + " %" in html
    assert "1,872" in html or "1.872" in html
    assert doc["summary"]["verdict"][lang].split(":")[0] in html
    assert html.count("data:image/png;base64,") == 1 and "<script" not in html
    assert "mismatch" not in html


def test_page_warns_when_measured_updates_are_not_the_plan() -> None:
    doc = _doc("increase-batch", {"decay": [0.98, 0.981], "increase": [0.98, 0.981]}, {"decay": 1872, "increase": 772})
    for r in doc["runs"]:
        r["updates"] = 1872  # a trainer that ignored the batch schedule
    doc["summary"] = summarise(get_study("increase-batch"), doc)
    assert 'class="note mismatch"' in render_study_page(doc, "en")
    assert doc["summary"]["verdict"]["code"] == "not_reproduced"


def test_cli_list_and_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["study", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in STUDIES) and "0.95 %" in out
    assert main(["study", "ghost-bn"]) == 2
    assert "--data mnist" in capsys.readouterr().err
    assert main(["study", "increase-batch", "--data", "mnist", "--seeds", "1"]) == 2
    err = capsys.readouterr().err
    assert "at least 2" in err and "Traceback" not in err
