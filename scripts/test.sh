#!/usr/bin/env bash
# Builds (scripts/setup.sh) and runs the whole test suite through ctest, twice:
#   1. build/       the normal build (with CUDA when nvcc is found); on a machine without
#                   a GPU the GPU tests skip with a reason and the rest must pass;
#   2. build-asan/  CPU-only, gcc -O1 -g with AddressSanitizer (leaks included) and
#                   UndefinedBehaviorSanitizer, where any finding fails its test.
# Both run to the end; the script fails if either did. Environment: BUILD_DIR (default
# build), ASAN_BUILD_DIR (default build-asan), CNN_TEST_SANITIZE=0 to skip the second,
# CNN_TEST_PYTHON (the python with safetensors; default: python3, else scripts/python_deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
status=0

scripts/setup.sh
# The checkpoint's interoperability test reads it with Python's safetensors: a pinned one
# in .tools/pyenv where python3 has none (best effort: without it that test skips).
if [[ -z ${CNN_TEST_PYTHON:-} ]] && ! python3 -c 'import safetensors.numpy' >/dev/null 2>&1; then
  if py=$(scripts/python_deps.sh); then export CNN_TEST_PYTHON=$py; fi
fi
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure -j "$jobs" --timeout 600 || status=1

if [[ ${CNN_TEST_SANITIZE:-1} != 0 ]]; then
  # halt_on_error: the first report ends the process, so the test fails where it happened
  # (the build also has -fno-sanitize-recover=all). These apply to the gtest discovery
  # runs during the build too.
  export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
  BUILD_DIR=${ASAN_BUILD_DIR:-build-asan} CNN_CUDA=OFF \
    CMAKE_ARGS="${CMAKE_ARGS:-} -DCMAKE_BUILD_TYPE=Debug -DCNN_SANITIZE=address,undefined" \
    scripts/setup.sh
  ctest --test-dir "${ASAN_BUILD_DIR:-build-asan}" --output-on-failure -j "$jobs" --timeout 900 ||
    status=1
fi
exit "$status"
