"""``cnnlab sweep`` over the options whose one value holds commas: ``batch_schedule`` and ``lr_steps``
(issue #14; Smith et al. 2017: grow the batch instead of decaying the learning rate).

References: the schedules are hand-written pairs, read back with the trainer's own ``parse_milestones``
(independent of the sweep's splitting); the real sweep's recorded optimizer steps are compared with
``train.batches.BatchPlan`` (itself checked against the real loader in test_train_batch_schedule.py)
and with the step counts worked out by hand in the comment there.

Run: ``PYTHONPATH=src python -m pytest -q tests/test_sweep_commas.py`` (quick part: a few seconds;
``-m slow`` adds the real 2-trial sweep: 24-30 s on 2 cores at load average 4.5-6).
"""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import yaml

from _sweep_helpers import image_folder, spec_file, trials_of
from cnnlab.errors import CnnlabError
from cnnlab.sweep.space import Param, build_space, parse_param
from cnnlab.sweep.values import config_options, split_values
from cnnlab.train import TrainConfig
from cnnlab.train.config import parse_milestones

OPTIONS = [f.name for f in dataclasses.fields(TrainConfig)]


# ---------------------------------------------------------------- parsing


def test_bar_separates_schedules_and_each_reads_back_as_its_pairs() -> None:
    p = parse_param("batch_schedule=none|10:5,20:5|5:2,10:2,15:2")
    assert p.kind == "choice" and len(p.grid()) == 3
    read = [parse_milestones("batch_schedule", v) for v in p.grid()]
    assert read == [[], [(10, 5), (20, 5)], [(5, 2), (10, 2), (15, 2)]]
    steps = parse_param("lr_steps=10:0.2,20:0.2|10:0.1")
    assert [parse_milestones("lr_steps", v) for v in steps.grid()] == [[(10, 0.2), (20, 0.2)], [(10, 0.1)]]


def test_commas_alone_make_one_schedule_not_several() -> None:
    """The bug of issue #14: ``batch_schedule=10:5,20:5`` was read as two schedules of one milestone each."""
    p = parse_param("batch_schedule=10:5,20:5")
    assert p.fixed and parse_milestones("batch_schedule", p.values[0]) == [(10, 5), (20, 5)]
    space = build_space([p, parse_param("lr=0.1,0.2")], OPTIONS)
    assert space.names == ["lr"] and space.size() == 2
    assert config_options(space.fixed) == {"batch_schedule": [[10, 5], [20, 5]]}


@pytest.mark.parametrize(("text", "expected"), [
    (" none | 10:5 , 20:5 ", [[], [(10, 5), (20, 5)]]),  # spaces around values and pairs
    ("'10:5,20:5',none", [[(10, 5), (20, 5)], []]),  # Hydra style: quotes keep the commas
    ('"10:5,20:5" , \'1:2\'', [[(10, 5), (20, 5)], [(1, 2)]]),
    ("'10:5|20:5'|OFF", None),  # a | inside quotes is not a separator: an error, since 10:5|20:5 is no schedule
    ("None|1:2.5", [[], [(1, 2.5)]]),
])
def test_spaces_quotes_and_none(text: str, expected: list | None) -> None:
    if expected is None:
        with pytest.raises(CnnlabError, match=r"the value '10:5\|20:5'"):
            parse_param(f"batch_schedule={text}")
        return
    p = parse_param(f"batch_schedule={text}")
    assert [parse_milestones("batch_schedule", v) for v in p.grid()] == expected
    assert all(isinstance(v, str) for v in p.grid())  # Optuna categorical choices: plain text


def test_the_other_syntaxes_still_work_and_bar_works_for_them_too() -> None:
    assert parse_param("lr=0.001,0.01").grid() == [0.001, 0.01]
    assert parse_param("lr=0.001|0.01").grid() == [0.001, 0.01]
    assert parse_param("lr=log:1e-4..1e-1:4").grid() == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1])
    assert (parse_param("lr=log:1e-4..1e-1").kind, parse_param("epochs=int:1..3").grid()) == ("float", [1, 2, 3])
    assert parse_param("optimizer='sgd', \"adamw\"").grid() == ["sgd", "adamw"]
    assert parse_param("optimizer='sgd'").fixed  # a quoted value is text, not a range or a list
    assert split_values("a,b|c") == [("a,b", False), ("c", False)]


def test_off_and_none_are_one_value() -> None:
    with pytest.raises(CnnlabError, match="'none' is listed twice"):
        parse_param("batch_schedule=off|none")
    with pytest.raises(CnnlabError, match="'1:2' is listed twice"):
        parse_param("batch_schedule=1:2| 1 : 2.0")


def test_a_param_built_in_python_gets_the_same_text_values() -> None:
    space = build_space([Param("batch_schedule", "choice", values=[[[1, 2]], None, "2:3"])], OPTIONS)
    assert space.params[0].grid() == ["1:2", "none", "2:3"]
    with pytest.raises(CnnlabError, match="not a range"):
        build_space([Param("lr_steps", "float", low=0.1, high=0.2)], OPTIONS, trials=2)


# ---------------------------------------------------------------- validation before any trial


@pytest.mark.parametrize(("params", "message"), [
    (["batch_schedule=none|1:x"], r"--param: batch_schedule: .*'1:x'.*separate several values of batch_schedule "
                                  r"with \|, e\.g\. -p batch_schedule='none\|10:5,20:5'"),
    (["batch_schedule=none|3:2", "epochs=2,5"], r"the trial batch_schedule='3:2', epochs=2 cannot work: .*"
                                                r"lie in 1\.\.1 \(the run has 2 epochs\)"),
    (["batch_schedule=none|1:1.5", "batch_size=7", "epochs=2"], r"7 x 1\.5 = 10\.5 is not a whole number"),
    (["lr_steps=1:0.1|2:0.5", "epochs=3"], r"lr_steps='1:0\.1' cannot work: .*add --schedule step"),
    (["lr_steps=1:0.1|none", "epochs=3", "schedule=step"], r"lr_steps='none' cannot work: .*needs lr_steps"),
    (["lr_steps=1:0.1|2:0.5,1:0.5", "epochs=3", "schedule=step"], r"lr_steps='2:0\.5,1:0\.5' cannot work: "
                                                                   r".*must increase strictly"),
    (["batch_schedule=none|2:2", "epochs=2,3", "lr=0.1,0.2"], r"the trial batch_schedule='2:2', epochs=2, "
                                                               r"lr=0\.1 cannot work"),
    (["batch_schedule='1:2|none"], r"the quote ' is not closed"),
    (["batch_size=0,4"], r"batch_size=0 cannot work"),  # the single-value message is kept
])
def test_bad_schedules_fail_the_dry_run_naming_param_and_value(tmp_path: Path, params: list[str],
                                                               message: str) -> None:
    from cnnlab.sweep import run_sweep

    spec = spec_file(tmp_path / "s.yaml")
    with pytest.raises(CnnlabError, match=message):
        run_sweep(str(spec), "unused", params, dry_run=True, quiet=True, out=tmp_path / "sw")
    assert not (tmp_path / "sw").exists()


def test_good_schedules_pass_with_the_options_they_need(tmp_path: Path) -> None:
    from cnnlab.sweep import run_sweep

    spec = str(spec_file(tmp_path / "s.yaml"))
    space = run_sweep(spec, "unused", ["lr_steps=1:0.1|1:0.5,2:0.5", "epochs=3", "schedule=step"], dry_run=True,
                      quiet=True)
    assert space.size() == 2 and space.params[0].grid() == ["1:0.1", "1:0.5,2:0.5"]
    space = run_sweep(spec, "unused", ["batch_schedule=none|1:2", "epochs=2,5", "batch_size=4,8"], dry_run=True,
                      quiet=True)
    assert space.size() == 8


def test_cli_error_exits_2_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnlab.cli import main

    spec = str(spec_file(tmp_path / "s.yaml"))
    out = tmp_path / "sw"
    assert main(["sweep", spec, "--data", "x", "-p", "batch_schedule=none|2:0", "-p", "epochs=3",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --param: batch_schedule:") and "'2:0'" in err and "Traceback" not in err
    assert not out.exists()
    assert main(["sweep", spec, "--data", "x", "-p", "batch_schedule=none|1:2", "-p", "epochs=2", "--dry-run"]) == 0
    assert "2 trials" in capsys.readouterr().out


def test_help_documents_the_bar() -> None:
    import subprocess
    import sys

    from _sweep_helpers import ROOT

    text = subprocess.run([sys.executable, "-m", "cnnlab", "sweep", "--help"], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "src"), "COLUMNS": "120", "PATH": "/usr/bin:/bin"},
                          check=True).stdout
    assert "batch_schedule=none|10:5,20:5" in text and "ONE value" in text


# ---------------------------------------------------------------- a real sweep, started then joined


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory):
    """``batch_schedule`` none vs 1:2 on 40 generated images, 2 epochs, over a base config that has 1:2.
    The sweep is created and stopped before any trial (as a Ctrl-C right after the start would), then
    ``join_sweep`` runs both trials: the values reach the trainer from the stored study alone."""
    import os

    from cnnlab.sweep import api, join_sweep, run_sweep

    tmp = tmp_path_factory.mktemp("commas")
    os.environ["CNNLAB_CACHE"] = str(tmp / "cache")
    real_work = api._work
    api._work = lambda *a, **k: 130  # no worker: the study holds two queued points
    try:
        started = run_sweep(str(spec_file(tmp / "tiny.yaml")), str(image_folder(tmp / "img", per_class=20)),
                            ["batch_schedule=none|1:2", "epochs=2", "batch_size=4", "augment=false", "lr=0.02"],
                            out=tmp / "sw", processes=False, quiet=True, val_split=0.2, report=False,
                            config={"batch_schedule": [[1, 2]]})  # "none" must turn the base's schedule off
    finally:
        api._work = real_work
    assert [t.state for t in started.trials] == ["waiting", "waiting"]
    result = join_sweep(tmp / "sw", processes=False, quiet=True)
    return tmp / "sw", result


@pytest.mark.slow
def test_each_trial_trained_with_its_batch_schedule(swept) -> None:
    from cnnlab.sweep.trial import load_sweep_data
    from cnnlab.train import load_run
    from cnnlab.train.batches import BatchPlan
    from cnnlab.train.checkpoint import read_weights

    folder, result = swept
    n_train = len(load_sweep_data(result.meta).train)  # the split every worker trains on
    steps = {}
    for t in trials_of(folder):
        assert t.state.name == "COMPLETE"
        run = folder / t.user_attrs["run"]
        recorded = yaml.safe_load((run / "config.yaml").read_text())["batch_schedule"]
        schedule = parse_milestones("batch_schedule", t.params["batch_schedule"])
        assert (recorded or []) == [list(p) for p in schedule]
        assert load_run(run).config.batch_schedule == (schedule or None)
        _, meta = read_weights(run / "checkpoints" / "last")
        plan = BatchPlan.build(batch_size=4, batch_schedule=schedule, epochs=2, samples=n_train)
        assert meta["step"] == plan.total
        steps[t.params["batch_schedule"]] = meta["step"]
    # 28 or so images: batch 4 in both epochs vs 4 then 8 (each drops its last partial batch)
    assert steps["none"] == 2 * (n_train // 4)
    assert steps["1:2"] == n_train // 4 + n_train // 8 < steps["none"]


@pytest.mark.slow
def test_table_exports_report_and_best_config_show_the_schedule(swept) -> None:
    from cnnlab.i18n import tr
    from cnnlab.sweep import load_sweep, write_sweep_report
    from cnnlab.sweep.table import final_table

    folder, result = swept
    rows = {r["batch_schedule"]: r for r in csv.DictReader((folder / "results.csv").open())}
    assert set(rows) == {"none", "1:2"} and {r["state"] for r in rows.values()} == {"complete"}
    table = final_table(load_sweep(folder), "en")
    assert "batch_schedule=1:2" in table and "batch_schedule=none" in table
    page = write_sweep_report(folder, lang="en").read_text()
    assert ">1:2</td>" in page and ">none</td>" in page and tr("sweep.page.table", "en") in page
    best = TrainConfig.from_yaml(folder / "best.yaml")  # a ready --config
    winner = parse_milestones("batch_schedule", result.best.params["batch_schedule"])
    assert best.batch_schedule == (winner or None) and best.epochs == 2


def test_config_options_is_the_config_file_form() -> None:
    opts = config_options({"batch_schedule": "10:5,20:5", "lr_steps": "none", "lr": 0.1, "layers.0.filters": 4})
    assert opts == {"batch_schedule": [[10, 5], [20, 5]], "lr_steps": None, "lr": 0.1}
    assert TrainConfig.from_dict({**opts, "schedule": "constant", "epochs": 30}).batch_schedule == [(10, 5), (20, 5)]
