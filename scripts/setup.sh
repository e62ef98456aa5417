#!/usr/bin/env bash
# Create .venv and install cnnlab into it. `--dev` adds the test tools (pytest, hypothesis,
# ruff, mypy, onnx, onnxruntime, playwright). Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# The CPU wheel of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
.venv/bin/python -m pip install -q --disable-pip-version-check "torch==${CNNLAB_TORCH:-2.13.0}"
if [ "${1:-}" = "--dev" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
else
  .venv/bin/python -m pip install -q --disable-pip-version-check -e .
fi
