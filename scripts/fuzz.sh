#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/) and runs each for a while.
#
#   bash scripts/fuzz.sh [SECONDS] [TARGET...]   build, then fuzz each target (default:
#                                                all) for SECONDS (default 120)
#   bash scripts/fuzz.sh build                   build only
#   bash scripts/fuzz.sh seeds                   rewrite the seed corpora in fuzz/corpus/
#
# The build is CPU-only, with clang, -fsanitize=fuzzer,address,undefined, in build-fuzz/
# (FUZZ_BUILD_DIR). clang and its libFuzzer runtime are installed when missing
# (CNN_FUZZ_DEPS=1 scripts/setup.sh). Each target reads the checked-in seeds
# fuzz/corpus/<target>/ and keeps what it finds in build-fuzz/corpus/<target>/; a crash
# is saved as build-fuzz/artifacts/<target>/crash-... and the script exits 1 at the end.
# Reproduce one with: build-fuzz/fuzz/fuzz_<target> FILE. Extra libFuzzer flags:
# FUZZ_ARGS (e.g. FUZZ_ARGS=-jobs=2). A record of the run (per target: executions, rate,
# coverage, peak memory, findings; with the commit, date and machine) goes to FUZZ_JSON
# (default build-fuzz/fuzz-summary.json), for bench/results/fuzz-DATE-SHORTSHA.json.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${FUZZ_BUILD_DIR:-build-fuzz}
all_targets=(idx weights checkpoint model_file png)

build() {
  CNN_FUZZ_DEPS=1 BUILD_DIR="$build_dir" CNN_CUDA=OFF \
    CMAKE_ARGS="-DCMAKE_CXX_COMPILER=clang++ -DCNN_FUZZ=ON \
-DCNN_BUILD_TESTS=OFF -DCNN_WARNINGS_AS_ERRORS=OFF" scripts/setup.sh
}

case ${1:-} in
  build)
    build
    exit 0
    ;;
  seeds)
    build
    rm -rf fuzz/corpus
    "$build_dir/fuzz/fuzz_seeds" fuzz/corpus
    find fuzz/corpus -type f | sort
    exit 0
    ;;
esac

seconds=${1:-120}
[[ $seconds =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a number, not '$seconds'" >&2; exit 2; }
shift || true
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

build
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:abort_on_error=1:print_stacktrace=1}
failed=()
for t in "${targets[@]}"; do
  [[ -f fuzz/fuzz_$t.cpp ]] ||
    { echo "fuzz: no target '$t' (have: ${all_targets[*]})" >&2; exit 2; }
  corpus=$build_dir/corpus/$t
  artifacts=$build_dir/artifacts/$t
  mkdir -p "$corpus" "$artifacts"
  dict=()
  [[ -f fuzz/$t.dict ]] && dict=(-dict="fuzz/$t.dict")
  seeds=("fuzz/corpus/$t")
  [[ $t == model_file && -d models ]] && seeds+=(models)  # the shipped model files
  echo "fuzz: $t for ${seconds}s"
  # shellcheck disable=SC2086
  if "$build_dir/fuzz/fuzz_$t" "$corpus" "${seeds[@]}" -max_total_time="$seconds" \
      -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$artifacts/" \
      "${dict[@]}" ${FUZZ_ARGS:-} 2>"$build_dir/fuzz-$t.log"; then
    grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$build_dir/fuzz-$t.log" || true
  else
    echo "fuzz: $t FAILED; log $build_dir/fuzz-$t.log, input(s) in $artifacts/" >&2
    tail -n 40 "$build_dir/fuzz-$t.log" >&2
    failed+=("$t")
  fi
done
python3 scripts/fuzz_summary.py "$build_dir" "$seconds" "${FUZZ_JSON:-$build_dir/fuzz-summary.json}" \
  "${targets[@]}" || echo "fuzz: no summary (python3 failed)" >&2
if ((${#failed[@]})); then
  echo "fuzz: findings in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: ${targets[*]}: no finding in ${seconds}s each"
