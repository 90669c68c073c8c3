#!/usr/bin/env bash
# The GPU check, for a session that has the GPU machine (device tool). The steps:
#
#   bash scripts/gpu_check.sh prepare     # here: fills .carry/ (ignored by git) with what
#                                         # the GPU machine lacks: GoogleTest sources, fmt,
#                                         # CLI11, nlohmann-json, zlib and libpng headers,
#                                         # libz and libpng, and the Fashion-MNIST files
#   bash scripts/gpu_check.sh run         # there, in one device call with carry [".carry"]:
#                                         # builds, runs every test, cnn verify on the four
#                                         # seed models, trains fashion-cnn with --impl native
#                                         # and --impl cudnn, and writes $OUT/gpu-check.json,
#                                         # $OUT/gpu-test-log.txt and, from the CPU suites'
#                                         # kernel_resources test, $OUT/kernel-resources.json
#                                         # (with the SASS census: that toolkit has cuobjdump)
#
#   bash scripts/gpu_check.sh bench       # there, in one device call (at most 10 minutes)
#                                         # with carry [".carry"]: builds the cnn binary,
#                                         # times our epochs (fp32, tf32; batch 32, 256),
#                                         # bench/torch_bench.py's, the layers (cnn bench) and
#                                         # the time to 92% test accuracy, the zoo's
#                                         # batch-norm layers, and writes
#                                         # $OUT/bench.json, bench-log.txt, bench-raw.tar.gz
#
#   bash scripts/gpu_check.sh all         # there, in ONE device call: command "bash
#                                         # scripts/gpu_check.sh all", carry [".carry"],
#                                         # timeout_s 600 (kind nvidia-h200 where lent):
#                                         # run (without the CPU suites and extra seeds),
#                                         # then bench with the time that is left, in
#                                         # ALL_BUDGET seconds (default 540): what a session
#                                         # with 15 minutes of device time can afford
#
#   bash scripts/gpu_check.sh sanitize    # there, in one device call with carry [".carry"]:
#                                         # the kernel suites under compute-sanitizer's
#                                         # memcheck, racecheck, synccheck and initcheck;
#                                         # writes $OUT/sanitizer.json, sanitizer-log.txt
#
# Commit the JSON as bench/results/gpu-check-DATE-SHORTSHA.json and the log beside it;
# bench.json as bench/results/bench-DATE-SHORTSHA.json; sanitizer.json as
# bench/results/sanitizer-DATE-SHORTSHA.json; kernel-resources.json as
# bench/results/kernel-resources-DATE-SHORTSHA.json.
# Device time: a session has 15 minutes (it once had 30), a machine takes a minute or more
# to start, stays warm only 30 s after a call (then the next call rebuilds on a fresh
# one), and none starts with under 4 minutes left: in practice one call of at most 10
# minutes, which is what `all` is for. Before each call read `status`: give the call a
# timeout_s no more than budget_left_s minus 90, and the step's budget (ALL_BUDGET,
# RUN_BUDGET, BENCH_BUDGET, SANITIZE_BUDGET) 60 s less than that. The issues' figures are
# the H200's: name kind nvidia-h200 where it is lent (an H100 answers the correctness
# questions as well; its timings are its own).
# Each step rewrites its JSON on $OUT after every stage, so a call cut short still
# returns what it finished.
# Environment for run: RUN_BUDGET (seconds, default 480), GPU_CHECK_EPOCHS (default 20,
# the seed recipe's cap), GPU_CHECK_EXTRA_SEEDS (default "1 2": the native run again from
# these seeds, as time allows), GPU_CHECK_SKIP_TRAIN=1 to stop after the tests and verify,
# GPU_CHECK_CPU_TESTS=0 to leave out the CPU suites (CI runs them), GPU_CHECK_TESTS_CAP
# (seconds, default none) to cap the GPU suites. For
# bench: BENCH_BUDGET (seconds, default 480), BENCH_EPOCHS (timed runs, default 3),
# BENCH_TARGET (0.92), BENCH_TTT_BATCH (32), BENCH_TTT_EPOCHS (20), BENCH_FAST_MODEL,
# BENCH_FAST_BATCH, BENCH_FAST_EPOCHS, BENCH_FAST_LR (the fast time-to-92 recipe:
# vgg-small, 128, 4, 0.003), BENCH_TORCH_ARGS (more
# flags for bench/torch_bench.py, e.g. "--limit 2048" for a quick try). On a fresh machine
# the build takes part of the budget: `run` first, then `bench` while the machine is warm,
# leaves it all.
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
  # The tree travels as it is, committed or not: the reports list what the commit lacks.
  git status --porcelain --untracked-files=normal >"$carry/uncommitted"
  git rev-parse HEAD:kernels >"$carry/kernels_tree"
  git rev-parse HEAD:engine >"$carry/engine_tree"
  du -sh "$carry"
}

# Configures build-gpu (a no-op for ninja when a warm machine still has it), logging to $1.
configure_gpu_build() {
  local log=$1 blas
  # cuDNN: the toolkit's, or the one PyTorch's wheels carry.
  if ! ls /usr/local/cuda/include/cudnn_version.h >/dev/null 2>&1; then
    CUDNN_ROOT=$(python3 -c 'import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])' || true)
    export CUDNN_ROOT
    export LD_LIBRARY_PATH=$CUDNN_ROOT/lib:${LD_LIBRARY_PATH:-}
  fi
  export LD_LIBRARY_PATH=$PWD/$carry/vendor/lib:${LD_LIBRARY_PATH:-}
  command -v nvcc >/dev/null || export PATH=/usr/local/cuda/bin:$PATH
  echo "nvcc: $(command -v nvcc || echo none); cmake: $(cmake --version | head -n 1)" | tee "$log"
  local args=(-S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNN_WITH_CUDA=ON
    -DCNN_VENDOR_DIR="$PWD/$carry/vendor" -DCNN_GTEST_SOURCE_DIR="$PWD/$carry/googletest"
    -DCNN_CPU_BLAS=none ${CUDNN_ROOT:+-DCUDNN_ROOT="$CUDNN_ROOT"})
  cmake "${args[@]}" 2>&1 | tee -a "$log" && return 0
  # A toolkit without cuBLAS: take the one PyTorch's wheels carry (nvidia/cu13/lib, whose
  # libraries have only versioned names, which FindCUDAToolkit does not look for).
  blas=$(python3 -c 'import glob, nvidia
print(next((f for p in nvidia.__path__ for f in sorted(glob.glob(p + "/*/lib/libcublas.so.*"))), ""))' || true)
  [[ -n $blas ]] || return 1
  local dir lt
  dir=$(dirname "$blas")
  lt=$(find "$dir" -name 'libcublasLt.so.*' | sort | head -n 1)
  echo "configure: retrying with cuBLAS from $dir" | tee -a "$log"
  export LD_LIBRARY_PATH=$dir:$LD_LIBRARY_PATH
  cmake "${args[@]}" -DCUDA_cublas_LIBRARY="$blas" -DCUDA_cublasLt_LIBRARY="$lt" \
    -DCMAKE_CXX_FLAGS="-isystem $dir/../include" 2>&1 | tee -a "$log"
}

# stage NAME MIN_SECONDS MAX_SECONDS COMMAND...: runs COMMAND under what is left of the
# step's budget (BUDGET seconds from START, RESERVE kept back for the report), and under
# MAX_SECONDS too when that is not 0; skips it when less than MIN_SECONDS are left. Its
# output goes to LOG and to WORK/NAME.log, its "NAME STATUS SECONDS" line (ok, failed-N,
# skipped) to WORK/stages.txt, which the reports read.
time_left() { echo $((BUDGET - (SECONDS - START) - RESERVE)); }
# The GPU's name and driver for the reports; nothing (not a failed step) without nvidia-smi.
gpu_info() {
  nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null |
    tee "$WORK/gpu.txt" || true
}
# After every stage the step's report is written again (REPORT, a command), so that a
# call the device tool cuts short still returns what finished.
REPORT=()
stage() {
  local name=$1 need=$2 cap=$3 left t0=$SECONDS status=0
  shift 3
  left=$(time_left)
  if ((left < need)); then
    echo "$name: skipped, ${left} s left" | tee -a "$LOG"
    echo "$name skipped 0" >>"$WORK/stages.txt"
    return 0
  fi
  if ((cap > 0 && cap < left)); then left=$cap; fi
  echo "$name (${left} s at most): $*" | tee -a "$LOG"
  set +e
  timeout --kill-after=10 "$left" "$@" 2>&1 | tee -a "$LOG" "$WORK/$name.log"
  status=${PIPESTATUS[0]}
  set -e
  echo "$name $([[ $status == 0 ]] && echo ok || echo "failed-$status") $((SECONDS - t0))" \
    >>"$WORK/stages.txt"
  if ((${#REPORT[@]})); then "${REPORT[@]}" >/dev/null 2>&1 || true; fi
}

# The test step. A device command may last 10 minutes, so every stage runs under what is
# left of RUN_BUDGET seconds, most important first (build, tests, verify, then the two
# training runs, each capped at half of what is left when it starts); the JSON is written
# whatever was cut, and says which stages ran.
run() {
  : "${OUT:?run this on the GPU machine, where OUT is set}"
  local epochs=${GPU_CHECK_EPOCHS:-20} m impl
  BUDGET=${RUN_BUDGET:-480} START=$SECONDS RESERVE=15
  LOG=$OUT/gpu-test-log.txt
  # At most 8 files come back from OUT: intermediates stay in a work folder.
  WORK=/tmp/gpu-check
  rm -rf "$WORK" && mkdir -p "$WORK"
  REPORT=(python3 scripts/gpu_check_report.py "$carry" "$WORK" "$LOG" "$OUT/gpu-check.json")
  gpu_info
  configure_gpu_build "$LOG" >/dev/null || echo "configure failed" | tee -a "$LOG"
  # Without the CPU suites, only what the GPU stages run: about half the compile time,
  # which on a fresh machine comes out of the same budget as the measurements.
  local cpu_tests=${GPU_CHECK_CPU_TESTS:-1} targets=()
  [[ $cpu_tests == 1 ]] || targets=(--target cnn test_kernels test_gpu)
  stage build 60 0 cmake --build build-gpu --parallel 16 "${targets[@]}"
  local cnn=build-gpu/apps/cnn/cnn
  export CNN_DATA_DIR=$PWD/$carry/data
  # The tests look for the real data in ../shared/data (tests/CMakeLists.txt), which does
  # not travel: without it they skip every real-data case.
  if [[ ! -e ../shared/data/fashion-mnist ]] && mkdir -p ../shared/data; then
    ln -s "$PWD/$carry/data" ../shared/data/fashion-mnist || true
  fi
  stage devices 5 30 "$cnn" devices
  # The GPU suites first, then verify and the two trainings; the CPU suites, which CI runs
  # too, with what is left (and fewer threads each: ctest runs several at once).
  # The time kept for the CPU suites at the end (without them, for torch_models_py).
  local cpu_reserve=120 tests_cap
  [[ $cpu_tests == 1 ]] || cpu_reserve=45
  tests_cap=$(($(time_left) - 120))
  if [[ -n ${GPU_CHECK_TESTS_CAP:-} ]] && ((GPU_CHECK_TESTS_CAP < tests_cap)); then
    tests_cap=$GPU_CHECK_TESTS_CAP
  fi
  stage tests-gpu 60 "$tests_cap" \
    ctest --test-dir build-gpu --output-on-failure -j 8 --timeout 240 -L 'kernels|gpu'
  for m in fashion-cnn mnist-cnn mnist-functional mnist-nopool; do
    stage "verify-$m" 10 60 "$cnn" verify --model "$m" --device cuda --batch-size 8 \
      --json "$WORK/verify-$m.json"
  done
  if [[ ${GPU_CHECK_SKIP_TRAIN:-0} != 1 ]]; then
    for impl in native cudnn; do
      # Each leaves the CPU suites their time; native takes at most half of the rest.
      local cap=$(($(time_left) - cpu_reserve))
      [[ $impl == native ]] && cap=$((cap / 2))
      ((cap > 0)) || cap=1
      stage "train-$impl" 30 "$cap" "$cnn" train --model fashion-cnn --device cuda \
        --impl "$impl" --epochs "$epochs" --batch-size 32 --validation-split 0.2 --patience 2 \
        --optimizer adam --progress lines --report "$WORK/train-$impl.json"
    done
  fi
  if [[ $cpu_tests == 1 ]]; then
    OMP_NUM_THREADS=4 stage tests-cpu 60 0 \
      ctest --test-dir build-gpu --output-on-failure -j 4 --timeout 240 -LE 'kernels|gpu'
    cp build-gpu/kernel-resources.json "$OUT/" 2>/dev/null || true
  else
    # Of the CPU suites, the one CI cannot run (it has no torch): the PyTorch peer builds
    # the same function as the engine, so the benchmark compares like with like.
    stage tests-torch-models 30 120 \
      ctest --test-dir build-gpu --output-on-failure --timeout 120 -R torch_models_py
  fi
  if [[ ${GPU_CHECK_SKIP_TRAIN:-0} != 1 ]]; then
    # The seed recipe is one sample of its spread: with what time is left, the same run
    # from other seeds (the CPU backend reached 0.9078 from seed 42; the seeds report 0.92).
    local seed
    for seed in ${GPU_CHECK_EXTRA_SEEDS-1 2}; do
      stage "train-native-seed$seed" 40 0 "$cnn" train --model fashion-cnn --device cuda \
        --impl native --epochs "$epochs" --batch-size 32 --validation-split 0.2 --patience 2 \
        --optimizer adam --seed "$seed" --progress lines \
        --report "$WORK/train-native-seed$seed.json"
    done
  fi
  "${REPORT[@]}"
}

# The benchmark step: our epoch times, layer timings and time to 92% against PyTorch's,
# merged by bench/bench_report.py into $OUT/bench.json. Every stage runs under what is
# left of BENCH_BUDGET seconds (a device command may last 10 minutes), most important
# first; one that fails or would not fit is recorded as such, and the report still comes.
bench() {
  : "${OUT:?run this on the GPU machine, where OUT is set}"
  local epochs=${BENCH_EPOCHS:-3} target=${BENCH_TARGET:-0.92}
  local ttt_batch=${BENCH_TTT_BATCH:-32} ttt_epochs=${BENCH_TTT_EPOCHS:-20}
  BUDGET=${BENCH_BUDGET:-480} START=$SECONDS RESERVE=20
  WORK=/tmp/gpu-bench LOG=$OUT/bench-log.txt
  local bs
  rm -rf "$WORK" && mkdir -p "$WORK"
  REPORT=(python3 bench/bench_report.py --carry "$carry" --work "$WORK"
    --log "$WORK/build-log.txt" --out "$OUT/bench.json")

  gpu_info
  # A failed build is logged, not fatal: the PyTorch stages still run and the report
  # says what is missing. On a fresh machine (the last call's is kept only 30 s) this is
  # a whole build of cnn.
  configure_gpu_build "$WORK/build-log.txt" >/dev/null || echo "bench: configure failed"
  echo "bench: $(ninja -C build-gpu -n cnn 2>/dev/null | grep -c '^\[' || true) build steps to run" |
    tee -a "$WORK/build-log.txt"
  stage build-cnn 60 300 cmake --build build-gpu --target cnn --parallel 16
  cat "$WORK/build-log.txt" >>"$LOG"
  export CNN_DATA_DIR=$PWD/$carry/data
  local cnn=build-gpu/apps/cnn/cnn
  local common=(--model fashion-cnn --device cuda --validation-split 0.2 --optimizer adam
    --seed 42 --progress lines)
  local torch_extra=()
  read -ra torch_extra <<<"${BENCH_TORCH_ARGS:-}"
  local torch=(python3 bench/torch_bench.py --data "$PWD/$carry/data" --models fashion-cnn
    --seed 42 "${torch_extra[@]}")

  # 1. Our epoch times in strict FP32 (the first epoch of each is reported apart).
  for bs in 32 256; do
    stage "ours-fp32-b$bs" 30 0 "$cnn" train "${common[@]}" --epochs "$epochs" --batch-size "$bs" \
      --report "$WORK/ours-fp32-b$bs.json"
  done
  # 2. PyTorch eager, NCHW and channels-last, FP32 and TF32.
  stage torch-eager 60 0 "${torch[@]}" --batch-sizes 32,256 --epochs "$epochs" \
    --variants eager,channels-last --precisions fp32,tf32 --json "$WORK/torch-eager.json" \
    --time-budget "$(($(time_left) - 30))"
  # 3. Ours with TF32 tensor cores.
  for bs in 32 256; do
    stage "ours-tf32-b$bs" 30 0 "$cnn" train "${common[@]}" --tf32 --epochs "$epochs" \
      --batch-size "$bs" --report "$WORK/ours-tf32-b$bs.json"
  done
  # 3b. Ours with --impl auto: each layer shape times native and cuDNN once and keeps the
  #     faster (engine "ours-auto" in the report).
  stage ours-auto-fp32-b256 30 0 "$cnn" train "${common[@]}" --impl auto --epochs "$epochs" \
    --batch-size 256 --report "$WORK/ours-auto-fp32-b256.json"
  stage ours-auto-tf32-b256 30 0 "$cnn" train "${common[@]}" --impl auto --tf32 \
    --epochs "$epochs" --batch-size 256 --report "$WORK/ours-auto-tf32-b256.json"
  # 4. Every conv and pooling layer per pass, native against cuDNN, and a training-only
  #    epoch at batch 256 (the peak fraction's time).
  stage layers 40 0 "$cnn" bench --model fashion-cnn --device cuda --batch-sizes 32,256 \
    --batch-size 256 --epochs 2 --seed 42 --json "$WORK/layers.json"
  # 5. Time to 92% test accuracy from process start, the seed recipe, ours then PyTorch's.
  local recipe="fashion-cnn, fp32, Adam lr 1e-3 (Keras defaults), batch $ttt_batch, validation"
  recipe+=" split 0.2 (last part), shuffle each epoch, early stopping on val_loss patience 2"
  recipe+=" (best weights restored), at most $ttt_epochs epochs, seed 42, test accuracy after"
  recipe+=" every epoch; seconds from process start to the end of that epoch's test evaluation"
  echo "ours (cnn train, default --impl), $recipe" >"$WORK/ours-ttt.recipe"
  stage ours-ttt 60 0 "$cnn" train "${common[@]}" --epochs "$ttt_epochs" --batch-size "$ttt_batch" \
    --patience 2 --target-accuracy "$target" --report "$WORK/ours-ttt.json"
  stage torch-ttt 60 0 "${torch[@]}" --batch-sizes "$ttt_batch" --epochs "$ttt_epochs" \
    --patience 2 --variants eager --precisions fp32 --target-accuracy "$target" \
    --json "$WORK/torch-ttt.json"
  # 5b. Time to 92% with a recipe chosen for speed (the issue allows any model and
  #     recipe): the same model description, schedule and data for ours and PyTorch's
  #     eager (bench/torch_models.py builds models/NAME.json). No validation split: all
  #     60,000 training images, the test set after every epoch.
  local fast_model=${BENCH_FAST_MODEL:-vgg-small} fast_batch=${BENCH_FAST_BATCH:-128}
  local fast_epochs=${BENCH_FAST_EPOCHS:-4} fast_lr=${BENCH_FAST_LR:-0.003}
  local fast=(--lr "$fast_lr" --lr-schedule onecycle)
  recipe="$fast_model, fp32, Adam lr $fast_lr onecycle over $fast_epochs epochs (pct_start"
  recipe+=" 0.3, div 25, final div 10000, beta1 0.95-0.85-0.95), batch $fast_batch, no"
  recipe+=" validation split, shuffle each epoch, seed 42, test accuracy after every epoch;"
  recipe+=" seconds from process start to the end of that epoch's test evaluation"
  echo "ours (cnn train, default --impl), $recipe" >"$WORK/ours-ttt-fast.recipe"
  stage ours-ttt-fast 20 0 "$cnn" train --model "$fast_model" --device cuda --seed 42 \
    --progress lines --epochs "$fast_epochs" --batch-size "$fast_batch" "${fast[@]}" \
    --target-accuracy "$target" --report "$WORK/ours-ttt-fast.json"
  stage torch-ttt-fast 40 0 python3 bench/torch_bench.py --data "$PWD/$carry/data" \
    --models "$fast_model" --seed 42 --batch-sizes "$fast_batch" --epochs "$fast_epochs" \
    --validation-split 0 "${fast[@]}" --variants eager --precisions fp32 \
    --target-accuracy "$target" --json "$WORK/torch-ttt-fast.json"
  # 6. The conv layers again on the 128x128 implicit-GEMM tiles (opt-in until these say).
  stage layers-tiles128 30 0 "$cnn" bench --model fashion-cnn --device cuda --batch-sizes 256 \
    --epochs 0 --conv-tiles 128 --seed 42 --json "$WORK/layers-tiles128.json"
  # 7. The same with TF32 (native against cuDNN's TF32), on both tiles.
  stage layers-tf32 30 0 "$cnn" bench --model fashion-cnn --device cuda --batch-sizes 256 \
    --epochs 0 --tf32 --seed 42 --json "$WORK/layers-tf32.json"
  stage layers-tf32-tiles128 30 0 "$cnn" bench --model fashion-cnn --device cuda \
    --batch-sizes 256 --epochs 0 --tf32 --conv-tiles 128 --seed 42 \
    --json "$WORK/layers-tf32-tiles128.json"
  # 8. The zoo models with batch norm (the seed models have none): their conv, pooling
  #    and batch-norm layers, native against cuDNN.
  for m in resnet-small vgg-small; do
    stage "layers-zoo-$m" 30 0 "$cnn" bench --model "$m" --device cuda --batch-sizes 32,256 \
      --epochs 0 --seed 42 --json "$WORK/layers-zoo-$m.json"
  done
  # 9. torch.compile (CUDA graphs; autotuning), with whatever time is left.
  stage torch-compile 90 0 "${torch[@]}" --batch-sizes 32,256 --epochs "$epochs" \
    --variants compile-reduce-overhead,compile-max-autotune --precisions fp32,tf32 \
    --json "$WORK/torch-compile.json" --time-budget "$(($(time_left) - 30))"

  "${REPORT[@]}" | tee -a "$LOG"
  # The raw inputs of the report, for a second look at anything it could not read.
  tar -czf "$OUT/bench-raw.tar.gz" -C "$WORK" .
}

# The sanitizer step: the kernel suites (tests/kernels: every kernel against the reference
# over its shape sweep) under compute-sanitizer, each tool under what is left of
# SANITIZE_BUDGET seconds: memcheck (out-of-bounds and misaligned accesses), racecheck
# (shared-memory hazards between a block's threads, which the simulator's fixed schedule
# cannot show), synccheck (barriers some threads miss) and initcheck (reads of device
# memory nothing wrote); then the backend suites (cuDNN, cuBLAS, graphs) under memcheck.
# Writes $OUT/sanitizer.json (per tool: status, seconds, errors) and sanitizer-log.txt.
# On some virtualized GPU machines compute-sanitizer refuses the device ("Device not
# supported", seen under gVisor in 2026-11; it ran under Firecracker): each tool's stage
# then records its failure, and the log says why. Run `nvidia-smi` and `uname -r` first
# if in doubt (gVisor reports kernel 4.4.0).
sanitize() {
  : "${OUT:?run this on the GPU machine, where OUT is set}"
  BUDGET=${SANITIZE_BUDGET:-300} START=$SECONDS RESERVE=15
  WORK=/tmp/gpu-sanitize LOG=$OUT/sanitizer-log.txt
  rm -rf "$WORK" && mkdir -p "$WORK"
  REPORT=(python3 scripts/gpu_check_report.py --sanitizer "$carry" "$WORK" "$OUT/sanitizer.json")
  gpu_info
  configure_gpu_build "$LOG" >/dev/null || echo "configure failed" | tee -a "$LOG"
  stage build 60 0 cmake --build build-gpu --target test_kernels test_gpu --parallel 16
  local cs kernels=build-gpu/tests/test_kernels
  cs=$(command -v compute-sanitizer || true)
  for cs in "$cs" /usr/local/cuda/bin/compute-sanitizer \
    /usr/local/cuda/compute-sanitizer/compute-sanitizer; do
    [[ -n $cs && -x $cs ]] && break
  done
  echo "compute-sanitizer: ${cs:-none}" | tee -a "$LOG"
  local common=(--error-exitcode 3 --print-limit 20)
  # Capped so that one slow tool leaves the others their turn; racecheck matters most (the
  # tiled kernels' shared memory).
  stage memcheck 60 150 "$cs" --tool memcheck "${common[@]}" "$kernels" --gtest_brief=1
  stage racecheck 60 180 "$cs" --tool racecheck --racecheck-report hazard "${common[@]}" \
    "$kernels" --gtest_brief=1
  stage synccheck 60 90 "$cs" --tool synccheck "${common[@]}" "$kernels" --gtest_brief=1
  stage initcheck 60 90 "$cs" --tool initcheck "${common[@]}" "$kernels" --gtest_brief=1
  stage memcheck-backend 60 0 "$cs" --tool memcheck "${common[@]}" build-gpu/tests/test_gpu \
    --gtest_brief=1
  "${REPORT[@]}"
}

# The whole check in one device call, for a session whose device time allows only one:
# `run` first, with RUN_BUDGET (default 65% of ALL_BUDGET; what it leaves unused goes to
# bench), without the CPU suites (but torch_models_py, which needs the GPU machine's
# PyTorch) or the extra seeds, its GPU suites capped (GPU_CHECK_TESTS_CAP, default 150 s)
# so that verify and both trainings get their turn; then `bench` with whatever is left
# (its build is the one `run` made: nothing to do). Both reports and logs land on $OUT
# (gpu-check.json, gpu-test-log.txt, bench.json, bench-log.txt, bench-raw.tar.gz).
all() {
  : "${OUT:?run this on the GPU machine, where OUT is set}"
  local budget=${ALL_BUDGET:-540} start=$SECONDS
  # A stage that fails is recorded by `stage`; nothing that run does may end the call
  # before bench has had its turn.
  RUN_BUDGET=${RUN_BUDGET:-$((budget * 65 / 100))} GPU_CHECK_CPU_TESTS=${GPU_CHECK_CPU_TESTS:-0} \
    GPU_CHECK_EXTRA_SEEDS=${GPU_CHECK_EXTRA_SEEDS-} GPU_CHECK_TESTS_CAP=${GPU_CHECK_TESTS_CAP:-150} \
    run || echo "all: run ended with status $?" | tee -a "$OUT/gpu-test-log.txt"
  BENCH_BUDGET=$((budget - (SECONDS - start))) bench ||
    echo "all: bench ended with status $?" | tee -a "$OUT/bench-log.txt"
}

case ${1:-} in
  prepare) prepare ;;
  run) run ;;
  bench) bench ;;
  all) all ;;
  sanitize) sanitize ;;
  *) echo "usage: $0 prepare|run|bench|all|sanitize" >&2; exit 2 ;;
esac
