#!/usr/bin/env bash
# Builds (scripts/setup.sh) and runs the whole test suite through ctest. On a machine
# without a GPU the GPU tests skip with a reason and the rest must pass.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$(nproc)" --timeout 600
