#!/usr/bin/env bash
# The GPU check, for a session that has the GPU machine (device tool). Two steps:
#
#   bash scripts/gpu_check.sh prepare     # here: fills .carry/ (ignored by git) with what
#                                         # the GPU machine lacks: GoogleTest sources, fmt,
#                                         # CLI11, nlohmann-json, zlib and libpng headers,
#                                         # libz and libpng, and the Fashion-MNIST files
#   bash scripts/gpu_check.sh run         # there, in one device call with carry [".carry"]:
#                                         # builds, runs every test, cnn verify on the four
#                                         # seed models, trains fashion-cnn with --impl native
#                                         # and --impl cudnn, and writes $OUT/gpu-check.json
#                                         # and $OUT/gpu-test-log.txt
#
# Commit the JSON as bench/results/gpu-check-DATE-SHORTSHA.json and the log beside it.
# Environment for run: GPU_CHECK_EPOCHS (default 20, the seed recipe's cap),
# GPU_CHECK_SKIP_TRAIN=1 to stop after the tests and verify.
set -euo pipefail
cd "$(dirname "$0")/.."
carry=.carry

prepare() {
  rm -rf "$carry"
  mkdir -p "$carry/vendor/include" "$carry/vendor/lib" "$carry/data"
  cp -r /usr/src/googletest "$carry/googletest"
  cp -r /usr/include/fmt /usr/include/CLI /usr/include/nlohmann "$carry/vendor/include/"
  cp /usr/include/zlib.h /usr/include/zconf.h "$carry/vendor/include/"
  cp -L /usr/lib/x86_64-linux-gnu/libz.so "$carry/vendor/lib/libz.so"
  # libpng: the headers png.h includes, the link name and the soname the binary asks for.
  cp -L /usr/include/png.h /usr/include/pngconf.h /usr/include/pnglibconf.h \
    "$carry/vendor/include/"
  cp -L /usr/lib/x86_64-linux-gnu/libpng16.so.16 "$carry/vendor/lib/libpng16.so.16"
  cp -L /usr/lib/x86_64-linux-gnu/libpng16.so.16 "$carry/vendor/lib/libpng.so"
  local data=""
  for dir in data/fashion-mnist ../shared/data/fashion-mnist; do
    if [[ -f $dir/train-images-idx3-ubyte.gz ]]; then data=$dir; break; fi
  done
  [[ -n ${data:-} ]] || { echo "gpu_check: no Fashion-MNIST files found" >&2; exit 1; }
  cp "$data"/*.gz "$carry/data/"
  git rev-parse HEAD >"$carry/commit"
  git rev-parse HEAD:kernels >"$carry/kernels_tree"
  git rev-parse HEAD:engine >"$carry/engine_tree"
  du -sh "$carry"
}

run() {
  : "${OUT:?run this on the GPU machine, where OUT is set}"
  local epochs=${GPU_CHECK_EPOCHS:-20}
  local log=$OUT/gpu-test-log.txt
  # At most 8 files come back from OUT: intermediates stay in a work folder.
  local work=/tmp/gpu-check
  rm -rf "$work" && mkdir -p "$work"
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | tee "$work/gpu.txt"
  # cuDNN: the toolkit's, or the one PyTorch's wheels carry.
  if ! ls /usr/local/cuda/include/cudnn_version.h >/dev/null 2>&1; then
    CUDNN_ROOT=$(python3 -c 'import nvidia.cudnn, os; print(os.path.dirname(nvidia.cudnn.__file__))')
    export CUDNN_ROOT
    export LD_LIBRARY_PATH=$CUDNN_ROOT/lib:${LD_LIBRARY_PATH:-}
  fi
  export LD_LIBRARY_PATH=$PWD/$carry/vendor/lib:${LD_LIBRARY_PATH:-}
  cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNN_WITH_CUDA=ON \
    -DCNN_VENDOR_DIR="$PWD/$carry/vendor" -DCNN_GTEST_SOURCE_DIR="$PWD/$carry/googletest" \
    -DCNN_CPU_BLAS=none ${CUDNN_ROOT:+-DCUDNN_ROOT="$CUDNN_ROOT"} 2>&1 | tee "$log"
  cmake --build build-gpu --parallel 16 2>&1 | tail -n 30 | tee -a "$log"
  local cnn=build-gpu/apps/cnn/cnn
  export CNN_DATA_DIR=$PWD/$carry/data
  $cnn devices | tee -a "$log"
  set +e
  ctest --test-dir build-gpu --output-on-failure -j 8 --timeout 300 >>"$log" 2>&1
  set -e
  tail -n 5 "$log"
  for m in fashion-cnn mnist-cnn mnist-functional mnist-nopool; do
    $cnn verify --model "$m" --device cuda --batch-size 8 --json "$work/verify-$m.json" \
      >>"$log" 2>&1 || true
  done
  if [[ ${GPU_CHECK_SKIP_TRAIN:-0} != 1 ]]; then
    for impl in native cudnn; do
      $cnn train --model fashion-cnn --device cuda --impl "$impl" --epochs "$epochs" \
        --batch-size 32 --validation-split 0.2 --patience 2 --optimizer adam \
        --report "$work/train-$impl.json" 2>&1 | tee -a "$log" || true
    done
  fi
  python3 scripts/gpu_check_report.py "$carry" "$work" "$log" "$OUT/gpu-check.json"
}

case ${1:-} in
  prepare) prepare ;;
  run) run ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
