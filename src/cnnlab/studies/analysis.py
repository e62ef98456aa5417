"""The numbers of a study and its verdict, from the runs in ``study.json`` (pure: no torch, no I/O).

``summarise(study, doc)`` -> ``{"arms": {key: stats}, ..., "verdict": {"code", "en", "pt"}}``. The verdict
is stated carefully: an arm "agrees within noise" when the difference of means is at most two standard
errors (seed-to-seed standard deviation over the square root of the seeds; never below the binomial
error of one test set), and only when that noise is small (2 SE at most 1 percentage point; for the
LeNet-5 target, at most half the paper's error); otherwise the verdict is "inconclusive".

>>> mean_std([0.98, 0.99, 1.0])
(0.99, 0.01)
>>> round(best_slope([32, 128, 512], [0.01, 0.04, 0.16]), 3)   # linear scaling: slope 1 on log-log axes
1.0
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from cnnlab.i18n import percent, tr

NOISE_SE = 2.0  # "within noise": a difference of at most this many standard errors
NOISE_MAX = 0.01  # ... and only when those standard errors are small: 2 SE of at most 1 percentage point


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (0 for one value), rounded to 6 decimals."""
    n = len(values)
    if not n:
        return math.nan, math.nan
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return round(m, 6), round(sd, 6)


def std_error(values: Sequence[float], test_images: int) -> float:
    """Standard error of the mean over seeds, at least the binomial error of one test-set accuracy."""
    m, sd = mean_std(values)
    binomial = math.sqrt(max(m * (1 - m), 1e-12) / max(test_images, 1))
    return max(sd / math.sqrt(len(values)), binomial / math.sqrt(len(values)), 1e-9)


def best_slope(batches: Sequence[float], lrs: Sequence[float]) -> float:
    """Least-squares slope of log(best lr) against log(batch): 1 is linear scaling, 0.5 square-root."""
    xs = [math.log(b) for b in batches]
    ys = [math.log(v) for v in lrs]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else math.nan


def _arm_stats(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for arm in doc["arms"]:
        runs = [r for r in doc["runs"] if r["arm"] == arm["key"]]
        accs = [r["test_acc"] for r in sorted(runs, key=lambda r: r["seed"])]
        m, sd = mean_std(accs)
        out[arm["key"]] = {"label": arm["label"], "n": len(accs), "test_acc_mean": m, "test_acc_std": sd,
                           "test_acc": accs, "se": std_error(accs, arm["test_images"]) if accs else math.nan,
                           "updates": sorted({r["updates"] for r in runs}),
                           "planned_updates": sorted({r["planned_updates"] for r in runs})}
    return out


def _diff(a: dict[str, Any], b: dict[str, Any]) -> tuple[float, float]:
    """(mean of a - mean of b, its standard error)."""
    return a["test_acc_mean"] - b["test_acc_mean"], math.sqrt(a["se"] ** 2 + b["se"] ** 2)


def _verdict(code: str, **values: Any) -> dict[str, str]:
    return {"code": code, **{lang: tr(f"study.verdict.{code}", lang, **_fmt(values, lang)) for lang in ("en", "pt")}}


def _fmt(values: dict[str, Any], lang: str) -> dict[str, Any]:
    return {k: (percent(v, lang) if isinstance(v, float) and k.startswith(("acc", "diff", "err", "gap", "se"))
                else v) for k, v in values.items()}


def summarise(study: Any, doc: dict[str, Any]) -> dict[str, Any]:
    arms = _arm_stats(doc)
    out: dict[str, Any] = {"arms": arms, "kind": study.kind}
    if study.kind == "arms":
        out.update(_increase_batch(arms))
    elif study.kind == "grid":
        out.update(_grid(doc))
    elif study.kind == "gap":
        out.update(_gap(arms))
    else:
        out.update(_target(arms, float(study.target_error)))
    return out


def _increase_batch(arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    decay, grow = arms["decay"], arms["increase"]
    diff, se = _diff(grow, decay)
    fewer = max(grow["updates"] or [0]) < min(decay["updates"] or [0])
    same = abs(diff) <= NOISE_SE * se
    code = "consistent" if same and fewer else ("fewer_not_same" if fewer else "not_reproduced")
    if code == "consistent" and NOISE_SE * se > NOISE_MAX:  # "the same" only means something when the noise is small
        code = "too_noisy"
    return {"diff": round(diff, 6), "diff_se": round(se, 6), "fewer_updates": fewer,
            "verdict": _verdict(code, diff=diff, se=se, k=f"{NOISE_SE:g}",
                                a=min(grow["updates"] or [0]), b=min(decay["updates"] or [0]))}


def _grid(doc: dict[str, Any]) -> dict[str, Any]:
    cells: dict[tuple[int, float], dict[str, list[float]]] = {}
    for r in doc["runs"]:
        key = (int(r["params"]["batch_size"]), float(r["params"]["lr"]))
        cell = cells.setdefault(key, {"val": [], "test": []})
        cell["val"].append(float(r["val_acc_best"] or 0.0))
        cell["test"].append(float(r["test_acc"]))
    batches = sorted({b for b, _ in cells})
    lrs = sorted({lr for _, lr in cells})
    table = [{"batch_size": b, "lr": lr, "val_mean": mean_std(c["val"])[0], "test_mean": mean_std(c["test"])[0],
              "test_std": mean_std(c["test"])[1], "n": len(c["test"])} for (b, lr), c in sorted(cells.items())]
    best = {}
    for b in batches:  # chosen on validation; the test accuracy is reported, never used to choose
        row = max((t for t in table if t["batch_size"] == b), key=lambda t: (t["val_mean"], -t["lr"]))
        best[str(b)] = {"lr": row["lr"], "val_mean": row["val_mean"], "test_mean": row["test_mean"],
                        "edge": row["lr"] in (lrs[0], lrs[-1])}
    slope = best_slope(batches, [best[str(b)]["lr"] for b in batches]) if len(batches) > 1 else math.nan
    # the lr grid steps by 2 over a batch range of batches[-1]/batches[0]: the slope is known to about
    # log(2)/log(range) either way
    resolution = math.log(lrs[1] / lrs[0]) / math.log(batches[-1] / batches[0]) if len(lrs) > 1 and len(batches) > 1 \
        else math.nan
    if math.isnan(slope):
        code = "grid_small"
    elif abs(slope - 1) <= resolution:
        code = "linear"
    elif abs(slope - 0.5) <= resolution:
        code = "sqrt"
    else:
        code = "other"
    edge = [b for b in batches if best[str(b)]["edge"]]
    return {"cells": table, "batches": batches, "lrs": lrs, "best": best, "slope": round(slope, 4),
            "resolution": round(resolution, 4), "edge": edge,
            "verdict": _verdict(code, slope=f"{slope:.2f}", res=f"{resolution:.2f}",
                                edge=", ".join(map(str, edge)) or "-")}


def _gap(arms: dict[str, dict[str, Any]]) -> dict[str, Any]:
    small = arms["small"]
    gaps = {}
    for key, a in arms.items():
        if key == "small":
            continue
        d, se = _diff(small, a)
        gaps[key] = {"gap": round(d, 6), "se": round(se, 6), "closed": abs(d) <= NOISE_SE * se}
    last = list(gaps)[-1]
    if NOISE_SE * gaps[last]["se"] > NOISE_MAX:
        code = "too_noisy"
    elif gaps["large"]["closed"]:
        code = "no_gap"
    elif gaps[last]["closed"]:
        code = "gap_closed"
    else:
        code = "gap_open"
    return {"gaps": gaps, "verdict": _verdict(code, gap=gaps["large"]["gap"], gap_last=gaps[last]["gap"],
                                              se=gaps[last]["se"], k=f"{NOISE_SE:g}")}


def _target(arms: dict[str, dict[str, Any]], target: float) -> dict[str, Any]:
    (a,) = arms.values()
    err = 1 - a["test_acc_mean"]
    se = a["se"]
    if NOISE_SE * se > target / 2:  # the seeds disagree by more than half the paper's error
        code = "too_noisy"
    elif abs(err - target) <= NOISE_SE * se:
        code = "target_met"
    elif err < target:
        code = "target_beaten"
    else:
        code = "target_missed"
    return {"error_mean": round(err, 6), "error_se": round(se, 6), "target_error": target,
            "verdict": _verdict(code, err=err, err_target=target, se=se, k=f"{NOISE_SE:g}")}


__all__ = ["summarise", "mean_std", "std_error", "best_slope", "NOISE_SE"]
