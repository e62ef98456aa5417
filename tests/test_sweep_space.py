"""Search spaces and bad input for ``cnnlab sweep`` (quick: no training, no worker processes).

References: log-spaced points are powers of ten computed by hand; the grid is ``itertools.product`` of
the literal values; option names are ``TrainConfig``'s dataclass fields.
"""

from __future__ import annotations

import dataclasses
import itertools
import random
import warnings
from pathlib import Path

import pytest

from _sweep_helpers import SPEC, spec_file
from cnnlab.errors import CnnlabError
from cnnlab.sweep.space import (
    apply_spec,
    build_space,
    find_placeholders,
    parse_param,
    parse_value,
)
from cnnlab.train import TrainConfig

OPTIONS = [f.name for f in dataclasses.fields(TrainConfig)]


def test_values_syntax() -> None:
    assert parse_param("lr=log:1e-4..1e-1:4").grid() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert parse_param("dropout=0..0.5:3").grid() == pytest.approx([0.0, 0.25, 0.5])
    assert parse_param("epochs=int:1..4").grid() == [1, 2, 3, 4]
    assert parse_param("optimizer=adamw,sgd").grid() == ["adamw", "sgd"]
    assert parse_param("batch-size=32,64").name == "batch_size"
    p = parse_param("lr=log:1e-4..1e-1")
    assert (p.kind, p.log, p.low, p.high, p.gridable()) == ("float", True, 1e-4, 1e-1, False)
    draws = [p.sample(random.Random(s)) for s in range(200)]
    assert all(1e-4 <= d <= 1e-1 for d in draws)
    below = sum(d < 10 ** -2.5 for d in draws)  # log-uniform: about half below the log midpoint
    assert 70 < below < 130
    assert [parse_value(t) for t in ("3", "3.0", "1e-3", "no")] == [3, 3.0, 0.001, "no"]


def test_grid_is_the_product_of_the_values() -> None:
    space = build_space([parse_param("lr=0.001,0.01,0.1"), parse_param("batch_size=32,64"),
                         parse_param("epochs=2")], OPTIONS)
    assert space.sampler == "grid" and space.fixed == {"epochs": 2}
    got = [(p["lr"], p["batch_size"]) for p in space.grid_points()]
    assert sorted(got) == sorted(itertools.product([0.001, 0.01, 0.1], [32, 64]))
    assert space.size() == 6


def test_a_range_chooses_tpe_and_needs_trials() -> None:
    with pytest.raises(CnnlabError, match="needs --trials"):
        build_space([parse_param("lr=log:1e-4..1e-1")], OPTIONS)
    space = build_space([parse_param("lr=log:1e-4..1e-1")], OPTIONS, trials=8)
    assert space.sampler == "tpe"
    points = space.random_points(5, seed=1)
    assert points == space.random_points(5, seed=1) and len({p["lr"] for p in points}) == 5


@pytest.mark.parametrize(("params", "kw", "message"), [
    (["epochs=3"], {}, "nothing to search"),
    (["batch_sise=32,64"], {}, "did you mean 'batch_size'"),
    (["lr=0.1..0.01"], {}, "is empty"),
    (["lr=log:0..1"], {}, "above 0"),
    (["lr=0.1,0.1"], {}, "listed twice"),
    (["lr=0.1,0.2", "lr=0.3,0.4"], {}, "given twice"),
    (["threads=1,2"], {}, "cannot be swept"),
    (["lr=log:1e-4..1e-1"], {"sampler": "grid"}, "continuous range"),
    (["lr=0.1,0.2"], {"sampler": "grid", "trials": 5}, "contradicts the grid of 2"),
    (["lr"], {}, "NAME=VALUES"),
])
def test_bad_spaces_are_clear_errors(params: list[str], kw: dict, message: str) -> None:
    with pytest.raises(CnnlabError, match=message):
        build_space([parse_param(p) for p in params], OPTIONS, **kw)


def test_spec_placeholders_and_paths(tmp_path: Path) -> None:
    spec = {**SPEC, "layers": [{"conv": {"filters": {"sweep": [4, 8]}, "kernel": 3, "padding": 1}}, {"pool": 2},
                               "flatten", {"dropout": {"sweep": "0..0.5:2"}}, {"output": 2}]}
    found = {p.name: p.grid() for p in find_placeholders(spec)}
    assert found == {"layers.0.filters": [4, 8], "layers.3": [0.0, 0.5]}
    out = apply_spec(spec, {"layers.0.filters": 8, "layers.3": 0.5, "lr": 0.1})
    assert out["layers"][0]["conv"]["filters"] == 8 and out["layers"][3] == {"dropout": 0.5}
    assert spec["layers"][0]["conv"]["filters"] == {"sweep": [4, 8]}  # the input is not changed
    with pytest.raises(CnnlabError, match="did you mean 'filters'"):
        apply_spec(SPEC, {"layers.0.filter": 8})
    with pytest.raises(CnnlabError, match="layers 0..3"):
        apply_spec(SPEC, {"layers.9.filters": 8})


def test_each_value_is_checked_before_anything_runs(tmp_path: Path) -> None:
    """A value that cannot work (0 filters, batch size 0) fails the dry run, naming option and value."""
    from cnnlab.sweep import run_sweep

    spec = spec_file(tmp_path / "s.yaml")
    with pytest.raises(CnnlabError, match=r"layers\.0\.filters=0 cannot work"):
        run_sweep(str(spec), "unused", ["layers.0.filters=0,4"], dry_run=True, quiet=True)
    with pytest.raises(CnnlabError, match=r"batch_size=0 cannot work"):
        run_sweep(str(spec), "unused", ["batch_size=0,4"], dry_run=True, quiet=True)
    space = run_sweep(str(spec), "unused", ["layers.0.filters=4,8", "lr=0.01,0.1"], dry_run=True, quiet=True)
    assert space.size() == 4
    assert not (tmp_path / "sweeps").exists()


def test_cli_errors_exit_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main

    spec = str(spec_file(tmp_path / "s.yaml"))
    assert main(["sweep", spec, "--data", "x", "-p", "learning_rate=0.1,0.2", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: search space: unknown option 'learning_rate'") and "Traceback" not in err
    assert main(["sweep", spec, "--data", "x", "-p", "lr=0.1", "--dry-run"]) == 2
    assert "nothing to search" in capsys.readouterr().err
    assert main(["sweep", "report", str(tmp_path)]) == 2
    assert "not a sweep folder" in capsys.readouterr().err


def test_unreachable_storage_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("psycopg")
    from cnnlab.sweep.storage import open_storage

    url = "postgresql://me:secret@127.0.0.1:9/none"  # port 9 (discard): nothing listens there
    with pytest.raises(CnnlabError) as info:
        open_storage(url)
    text = str(info.value)
    assert "cannot open the study storage postgresql://me:***@127.0.0.1:9/none" in text
    assert "secret" not in text
    with pytest.raises(CnnlabError, match="cannot open the study storage"):
        open_storage("sqlite:////nonexistent-dir/x/study.db")


def test_a_trial_killed_before_reading_its_values_is_retried_with_its_grid_point(tmp_path: Path) -> None:
    """The retry of a claimed-but-unstarted grid trial carries that trial's point (not a new sample)."""
    from cnnlab.sweep.api import _create
    from cnnlab.sweep.storage import fail_and_retry

    space = build_space([parse_param("lr=0.1,0.2,0.3"), parse_param("batch_size=8,16")], OPTIONS)
    url = f"sqlite:///{tmp_path}/study.db"
    study = _create(tmp_path, "s", url, {"space": space.to_dict(), "trials": 6, "seed": 0}, space)
    with warnings.catch_warnings():  # "heartbeat ... supposed to be used with Study.optimize": as a worker does
        warnings.simplefilter("ignore", UserWarning)
        claimed = study.ask()  # a worker claims the first queued point ... and dies before suggesting
    frozen = study.get_trials(deepcopy=False)[claimed.number]
    assert frozen.params == {} and frozen.user_attrs["point"] == 0
    assert fail_and_retry(study, frozen)
    assert not fail_and_retry(study, frozen)  # a second process finds it already failed: no second retry
    again = load_study_trials(url)
    retries = [t for t in again if t.user_attrs.get("retry_of") == claimed.number]
    assert len(retries) == 1 and retries[0].state.name == "WAITING"
    assert retries[0].user_attrs["continues"] == claimed.number
    lr, bs = next(iter(itertools.product([0.1, 0.2, 0.3], [8, 16])))
    fixed = [r for r in again if r.number == retries[0].number][0].system_attrs["fixed_params"]
    assert fixed == {"lr": lr, "batch_size": bs}


def load_study_trials(url: str) -> list:
    from cnnlab.sweep.storage import load_study, open_storage

    return load_study(open_storage(url), "s").get_trials(deepcopy=False)
