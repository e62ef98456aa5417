#!/usr/bin/env bash
# Create .venv and install cnnlab into it. `--dev` adds the test tools (pytest, hypothesis,
# ruff, mypy, onnx, onnxruntime, playwright). Safe to run again: it only installs what is missing.
# Offline (packages already at hand): CNNLAB_PIP_ARGS="--no-index --find-links wheels/" (or
# "--no-index --no-build-isolation" when .venv can already see them) is passed to every pip call.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
# shellcheck disable=SC2086  # CNNLAB_PIP_ARGS is a list of words
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check ${CNNLAB_PIP_ARGS:-})
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The CPU wheel of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
"${PIP[@]}" "torch==${CNNLAB_TORCH:-2.13.0}"
if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" -e ".[dev]"
else
  "${PIP[@]}" -e .
fi
cat <<'DONE'

cnnlab is installed in .venv. In this shell and every new one, activate it first:

    source .venv/bin/activate

then `cnnlab --help` lists the commands (or write .venv/bin/cnnlab without activating).
DONE
