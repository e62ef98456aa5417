"""The report's torch-free pictures drawn in a forked process: the same bytes as drawn serially, really
drawn in another process when two cores are usable, and drawn here when the child fails."""

from __future__ import annotations

import os

import pytest

from _report_helpers import tiny_run
from cnnlab.report import concurrent
from cnnlab.report.collect import collect_report
from cnnlab.train import load_run


@pytest.fixture(scope="module")
def run_and_data(tmp_path_factory):  # noqa: ANN001, ANN201
    folder, bundle = tiny_run(tmp_path_factory.mktemp("concurrent") / "run")
    return load_run(folder), bundle.val


def _pictures(report) -> dict[str, bytes]:  # noqa: ANN001
    pics = [report.curves, report.confusion, report.mistakes, report.maps, report.cams, *report.filters]
    return {p.key: p.png for p in pics if p is not None}


def test_background_pictures_equal_serial_ones(run_and_data, monkeypatch) -> None:
    run, val = run_and_data
    monkeypatch.setattr(concurrent, "usable_cores", lambda: 2)
    parallel = _pictures(collect_report(run, val))
    monkeypatch.setattr(concurrent, "usable_cores", lambda: 1)
    serial = _pictures(collect_report(run, val))
    assert {"curves", "confusion", "mistakes", "cam"} <= set(serial)
    assert parallel == serial


def test_jobs_run_in_a_child_when_two_cores_are_usable(monkeypatch) -> None:
    monkeypatch.setattr(concurrent, "usable_cores", lambda: 2)
    assert concurrent.in_background({"pid": os.getpid}).results()["pid"] != os.getpid()
    monkeypatch.setattr(concurrent, "usable_cores", lambda: 1)
    assert concurrent.in_background({"pid": os.getpid}).results()["pid"] == os.getpid()


def test_a_failing_child_falls_back_to_drawing_here(monkeypatch) -> None:
    parent = os.getpid()

    def only_here() -> int:
        if os.getpid() != parent:
            os._exit(3)  # the child dies without a word (OOM kill, segfault)
        return 42

    monkeypatch.setattr(concurrent, "usable_cores", lambda: 2)
    assert concurrent.in_background({"x": only_here}).results() == {"x": 42}
    assert concurrent.in_background({"y": lambda: 7}).results() == {"y": 7}  # and the next call works


def test_a_stuck_child_is_killed_and_the_jobs_run_here(monkeypatch) -> None:
    import time

    parent = os.getpid()

    def stuck_in_child() -> str:
        if os.getpid() != parent:
            time.sleep(600)  # e.g. a lock another thread held at fork time
        return "here"

    monkeypatch.setattr(concurrent, "usable_cores", lambda: 2)
    monkeypatch.setattr(concurrent, "WAIT_S", 1.0)
    start = time.monotonic()
    assert concurrent.in_background({"x": stuck_in_child}).results() == {"x": "here"}
    assert time.monotonic() - start < 60
