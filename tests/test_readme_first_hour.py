"""Issue 16, a newcomer's first hour: the README, followed to the letter on a fresh clone.

The test clones this repository (its committed HEAD) into a temporary folder, runs the README's
setup block there, then runs every ``bash`` block of the README, each in a fresh shell with a clean
environment that does only what the README says (``source .venv/bin/activate``), bare ``cnnlab``
included. It also runs the commands the demo prints on its ``next:`` line, and compares the
blocks marked ``<!-- readme-test: output-of COMMAND -->`` with what COMMAND prints now: every shown
line must appear, in order (``...`` stands for lines left out).

README markers (an HTML comment on the line just before a fenced block):

- ``<!-- readme-test: setup -->``: the setup block, run first, in the clone, before any activation;
- ``<!-- readme-test: skip (why) -->``: a block that needs what a test machine lacks (GPUs, nodes,
  downloads, your own photos): not run;
- ``<!-- readme-test: output-of COMMAND -->``: the block is COMMAND's output;
- ``<!-- readme-test: run -->``: a ``python`` block to run with the environment's ``python``
  (unmarked python blocks are fragments and are not run).

No network: the clone's ``.venv`` is made beforehand and sees the packages of the Python running
the tests (a ``.pth`` file), and the setup runs with ``CNNLAB_PIP_ARGS="--no-index
--no-build-isolation"`` (the offline mode of ``scripts/setup.sh``), so pip installs cnnlab from the
clone without downloading anything. Slow (the demo trains for about 20 seconds, and the setup installs):

    PYTHONPATH=src .venv/bin/python -m pytest -q -m slow tests/test_readme_first_hour.py
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>setup|skip|output-of|run)\b\s*(?P<arg>.*?)\s*-->\s*$")
ACTIVATE = "source .venv/bin/activate"


@dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str = ""  # setup | skip | output-of | ""
    arg: str = ""


def readme_blocks(text: str) -> list[Block]:
    """Fenced blocks with the marker on the line before each (if any)."""
    lines = text.splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start = i
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        found = MARKER.match(lines[start - 1]) if start else None
        blocks.append(Block(start + 1, fence.group(1), "\n".join(body),
                            found.group("kind") if found else "", found.group("arg") if found else ""))
        i += 1
    return blocks


def test_readme_blocks_are_parsed_with_their_markers() -> None:
    """The parser itself, on a README written for the purpose (quick: not slow)."""
    text = "\n".join([
        "<!-- readme-test: setup -->", "```bash", "bash scripts/setup.sh", "```", "",
        "```bash", "cnnlab models", "```",
        "<!-- readme-test: skip (needs GPUs) -->", "```bash", "cnnlab train x --device cuda", "```",
        "<!-- readme-test: output-of cnnlab models -->", "```", "bundled networks", "```",
    ])
    got = [(b.line, b.lang, b.marker, b.arg, b.text) for b in readme_blocks(text)]
    assert got == [(2, "bash", "setup", "", "bash scripts/setup.sh"), (6, "bash", "", "", "cnnlab models"),
                   (10, "bash", "skip", "(needs GPUs)", "cnnlab train x --device cuda"),
                   (14, "", "output-of", "cnnlab models", "bundled networks")]


def shown_lines_missing(shown: str, output: str) -> str | None:
    """The first shown line that is not in ``output`` (in order), or ``None`` when all are there."""
    got = [line.rstrip() for line in output.splitlines()]
    at = 0
    for want in (line.rstrip() for line in shown.splitlines()):
        if not want or want.strip() in ("...", "…"):
            continue
        while at < len(got) and got[at] != want:
            at += 1
        if at == len(got):
            return want
        at += 1
    return None


def test_output_comparison_needs_every_shown_line_in_order() -> None:
    assert shown_lines_missing("a\n...\nc", "a\nb\nc\n") is None
    assert shown_lines_missing("a\nc", "c\na\n") == "c"
    assert shown_lines_missing("a\nx", "a\nb\n") == "x"


def fresh_env(home: Path) -> dict[str, str]:
    """A new login's environment: no venv on the PATH, no cnnlab variables, English, no network use."""
    return {"HOME": str(home), "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "TERM": "dumb",
            "CNNLAB_CACHE": str(home / "cache"), "CNNLAB_DATA": str(home / "data"),
            "CNNLAB_PIP_ARGS": "--no-index --no-build-isolation", "PIP_NO_INPUT": "1",
            "PYTHON": sys.executable}


def shell(script: str, cwd: Path, env: dict[str, str], timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-e", "-o", "pipefail", "-c", script], cwd=cwd, env=env, text=True,
                          capture_output=True, timeout=timeout)


def prepare_clone(tmp: Path) -> Path:
    """``git clone`` of this repository, with a ``.venv`` that already sees this interpreter's packages."""
    clone = tmp / "cnnlab"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, capture_output=True, timeout=120)
    # without its own pip and setuptools: the ones it sees are those of the Python running the tests
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(clone / ".venv")], check=True, capture_output=True,
                   timeout=300)
    site = next((clone / ".venv" / "lib").glob("python*/site-packages"))
    paths = [p for p in {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]} if os.path.isdir(p)]
    (site / "_reuse_test_packages.pth").write_text("\n".join(paths) + "\n")
    return clone


@pytest.mark.slow
def test_the_readme_works_as_printed_on_a_fresh_clone(tmp_path: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    clone = prepare_clone(tmp_path)
    home = tmp_path / "home"
    (home / "data").mkdir(parents=True)
    env = fresh_env(home)
    blocks = readme_blocks((clone / "README.md").read_text(encoding="utf-8"))
    setup = [b for b in blocks if b.marker == "setup"]
    assert len(setup) == 1, "the README has one setup block, marked <!-- readme-test: setup -->"
    assert ACTIVATE in setup[0].text, "the setup block says how to activate the environment"

    bare = shell("command -v cnnlab", clone, env)
    assert bare.returncode != 0, "a fresh shell must not find cnnlab before the README's activation"
    done = shell(setup[0].text, clone, env, timeout=2400)  # the demo trains ~1 min on a quiet CPU
    assert done.returncode == 0, f"README setup block (line {setup[0].line}) failed:\n{done.stdout}\n{done.stderr}"
    assert ACTIVATE in done.stdout, "scripts/setup.sh prints how to activate the environment"

    ran = 0
    for block in blocks:
        runnable = block.marker in ("output-of", "run") or (block.marker == "" and block.lang in ("bash", "sh"))
        if not runnable:
            continue
        if block.marker == "run":
            result = shell(f"{ACTIVATE}\npython - <<'README_PY'\n{block.text}\nREADME_PY", clone, env)
            assert result.returncode == 0, (f"README python block at line {block.line} failed:\n"
                                            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        elif block.marker == "output-of":
            result = shell(f"{ACTIVATE}\n{block.arg}", clone, env)
            assert result.returncode == 0, f"`{block.arg}` (README line {block.line}) failed:\n{result.stderr}"
            missing = shown_lines_missing(block.text, result.stdout)
            assert missing is None, f"README line {block.line}: `{block.arg}` no longer prints:\n{missing}"
        else:
            result = shell(f"{ACTIVATE}\n{block.text}", clone, env)
            assert result.returncode == 0, (f"README bash block at line {block.line} failed:\n{block.text}\n"
                                            f"--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}")
        ran += 1
    assert ran >= 5

    printed = [line for line in done.stdout.splitlines() if line.startswith("next: ")]
    assert printed, "the demo prints what to run next"
    for command in printed[-1][len("next: "):].split("|"):
        result = shell(f"{ACTIVATE}\n{command.strip()}", clone, env)
        assert result.returncode == 0, f"the demo's `{command.strip()}` failed:\n{result.stderr}"
    assert (clone / "runs" / "first" / "report.html").is_file()  # the six-command path's last step
