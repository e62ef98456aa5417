"""A sweep run in this process on a tiny generated folder: trials are ordinary run folders, a hopeless
trial is pruned by the median rule, a diverging trial is recorded with its error while the sweep goes
on, the winner is chosen on validation and measured on the test split once; exports and the page.

References: the median rule is recomputed here from the trials' reported values; the winner is the
maximum of the values read back from Optuna; the run folders are read back with ``load_run``.
"""

from __future__ import annotations

import csv
import json
import statistics

import pytest
import yaml

from _sweep_helpers import image_folder, spec_file, trials_of

pytestmark = pytest.mark.slow  # five short trainings: about 5 s on a quiet machine, a minute on a loaded one


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory):
    import os

    tmp = tmp_path_factory.mktemp("sweep")
    os.environ["CNNLAB_CACHE"] = str(tmp / "cache")
    from cnnlab.sweep import run_sweep

    result = run_sweep(str(spec_file(tmp / "tiny.yaml")), str(image_folder(tmp / "img", per_class=60)),
                       ["lr=0.01,0.03,0.05,1e-07,1e10", "optimizer=sgd", "epochs=2", "batch_size=8", "augment=false"],
                       out=tmp / "sw", prune=True, processes=False, quiet=True, test_split=0.2)
    return tmp / "sw", result


def test_trials_are_run_folders_and_states_are_recorded(swept) -> None:
    from cnnlab.train import load_run

    folder, result = swept
    trials = {t.params["lr"]: t for t in trials_of(folder)}
    assert [trials[lr].state.name for lr in (0.01, 0.03, 0.05)] == ["COMPLETE"] * 3
    for lr in (0.01, 0.03, 0.05):
        run = load_run(folder / trials[lr].user_attrs["run"])
        assert run.config.lr == lr and run.config.optimizer.value == "sgd" and len(run.metrics) == 2
    diverged = trials[1e10]
    assert diverged.state.name == "FAIL" and "NaN or infinite" in diverged.user_attrs["error"]


def test_the_hopeless_trial_is_pruned_by_the_median_rule(swept) -> None:
    folder, _ = swept
    trials = {t.params["lr"]: t for t in trials_of(folder)}
    tiny = trials[1e-07]
    epoch1 = [trials[lr].intermediate_values[1] for lr in (0.01, 0.03, 0.05)]
    assert tiny.intermediate_values[1] < statistics.median(epoch1)  # the rule's premise, recomputed
    assert tiny.state.name == "PRUNED" and list(tiny.intermediate_values) == [1]
    status = json.loads((folder / tiny.user_attrs["run"] / "status.json").read_text())
    assert status["state"] == "finished" and status["pruned"] is True


def test_winner_on_validation_and_test_measured_once(swept) -> None:
    from cnnlab.sweep import load_sweep
    from cnnlab.sweep.storage import TEST_KEY, load_study, open_storage

    folder, result = swept
    done = [t for t in trials_of(folder) if t.state.name == "COMPLETE"]
    best = max(done, key=lambda t: (t.value, -t.number))
    assert result.best.number == best.number
    study = load_study(open_storage(f"sqlite:///{folder}/study.db"), "sw")
    test = study.user_attrs[TEST_KEY]
    assert test["trial"] == best.number and 0.0 <= test["accuracy"] <= 1.0 and test["images"] == 24
    again = load_sweep(folder)
    assert again.test == test


def test_exports_and_page(swept) -> None:
    from cnnlab.sweep import write_sweep_report

    folder, result = swept
    rows = list(csv.DictReader((folder / "results.csv").open()))
    assert {r["state"] for r in rows} == {"complete", "pruned", "failed"} and len(rows) == 5
    best = yaml.safe_load((folder / "best.yaml").read_text())
    assert best["lr"] == result.best.params["lr"] and best["optimizer"] == "sgd" and "threads" not in best
    from cnnlab.train import TrainConfig

    assert TrainConfig.from_dict(best).lr == result.best.params["lr"]  # a ready --config
    page = write_sweep_report(folder, lang="pt").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "http" not in page.replace("http-equiv", "")
    assert "medida uma única vez" not in page or "Acurácia de teste" in page
    assert "Acurácia de teste do vencedor" in page
