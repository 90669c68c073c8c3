#!/usr/bin/env bash
# Makes the Python that the test suite's interoperability checks run: a virtual environment
# in .tools/pyenv with the safetensors package (and numpy, which its numpy loader needs), so
# that CheckpointTest.PythonSafetensorsReadsIt reads a checkpoint with the reader PyTorch
# users load them with, instead of skipping where the system's python3 lacks it (Debian
# packages no safetensors). Versions are pinned below; wheels only, from PyPI.
#
# Prints the environment's python on stdout when it works (made now or before); exit status
# 1, with one line on stderr saying why, when it cannot be had (no venv module, no network).
# scripts/test.sh sets CNN_TEST_PYTHON to it. Environment: PYENV_DIR (default .tools/pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${PYENV_DIR:-.tools/pyenv}
pins=(safetensors==0.4.5 numpy==1.26.4)
python=$dir/bin/python

works() { "$python" -c 'import safetensors.numpy' >/dev/null 2>&1; }

if ! works; then
  rm -rf "$dir"
  if ! python3 -m venv "$dir" >/dev/null 2>&1; then
    echo "python_deps: python3 cannot make a virtual environment (Debian: python3-venv)" >&2
    rm -rf "$dir"
    exit 1
  fi
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if ! "$python" -m pip install --quiet --timeout 30 --retries 2 --only-binary=:all: \
    "${pins[@]}" >"$log" 2>&1; then
    why=$(grep -m 1 '^ERROR' "$log" || grep -v '^ *$' "$log" | tail -n 1 || true)
    echo "python_deps: pip could not install ${pins[*]}: ${why#ERROR: }" >&2
    rm -rf "$dir"
    exit 1
  fi
  works || {
    echo "python_deps: installed, but safetensors.numpy does not import" >&2
    exit 1
  }
fi
echo "$PWD/$python"
