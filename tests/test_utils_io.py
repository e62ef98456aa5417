"""Atomic writes: complete file or untouched old one, and ordinary permissions."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cnnlab.utils.io import atomic_path, atomic_write_text


def test_write_replaces_content_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "f.txt"
    atomic_write_text(target, "one")
    atomic_write_text(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in target.parent.iterdir()] == ["f.txt"]


def test_failure_keeps_old_file_and_removes_temp(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_mode_follows_umask_like_open(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        (tmp_path / "b.txt").write_text("x")  # what a plain open() gives
    finally:
        os.umask(old)
    mode_a = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    mode_b = stat.S_IMODE((tmp_path / "b.txt").stat().st_mode)
    assert mode_a == mode_b == 0o644
