#!/usr/bin/env bash
# Sets up a fresh Debian/Ubuntu machine and builds the project into build/.
#   - installs the build dependencies from the distribution's packages when missing
#     (needs root or sudo; otherwise prints the apt-get line to run);
#   - configures with CUDA when nvcc is found (the toolkit's cuBLAS and cuDNN are
#     required then), else CPU-only with -DCNN_WITH_CUDA=OFF, and says which;
#   - builds with ninja.
# Environment: BUILD_DIR (default build), CNN_CUDA=ON|OFF to force the choice,
# CMAKE_CUDA_ARCHITECTURES (default 90), CMAKE_ARGS (extra configure arguments),
# CNN_FUZZ_DEPS=1 to install the optional fuzzing packages too (clang and its libFuzzer
# runtime, for scripts/fuzz.sh), CNN_SASS_TOOLS=0 not to fetch cuobjdump (below).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(cmake ninja-build g++ pkg-config libfmt-dev libcli11-dev nlohmann-json3-dev
          zlib1g-dev libpng-dev libopenblas-dev libgtest-dev)
if [[ ${CNN_FUZZ_DEPS:-0} == 1 ]]; then
  packages+=(clang libclang-rt-dev)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  if [[ $(id -u) == 0 ]]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "setup: missing packages; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

build_dir=${BUILD_DIR:-build}
cuda=${CNN_CUDA:-}
if [[ -z $cuda ]]; then
  if command -v nvcc >/dev/null || [[ -x /usr/local/cuda/bin/nvcc ]]; then cuda=ON; else cuda=OFF; fi
fi
if [[ $cuda == ON && -z ${CUDACXX:-} ]] && ! command -v nvcc >/dev/null; then
  export CUDACXX=/usr/local/cuda/bin/nvcc
fi
# The kernel_resources test's SASS census needs cuobjdump, which slim toolkits lack (they
# have nvcc and ptxas, no disassembler): fetch NVIDIA's, best effort (scripts/sass_tools.sh).
# Without it that test still checks registers and spills, and says the SASS rules went
# unchecked. CNN_SASS_TOOLS=0 skips the fetch.
if [[ $cuda == ON && ${CNN_SASS_TOOLS:-1} != 0 ]]; then
  nvcc_path=${CUDACXX:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
  if [[ ! -x $(dirname "$nvcc_path")/cuobjdump ]] && ! command -v cuobjdump >/dev/null; then
    scripts/sass_tools.sh ||
      echo "setup: no cuobjdump: the kernel_resources test will not check the SASS rules"
  fi
fi
echo "setup: configuring $build_dir with CNN_WITH_CUDA=$cuda"
# shellcheck disable=SC2086
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCNN_WITH_CUDA="$cuda" \
  -DCNN_WARNINGS_AS_ERRORS=ON ${CMAKE_ARGS:-} >/dev/null
cmake --build "$build_dir" --parallel "$(nproc)"
echo "setup: built $build_dir/apps/cnn/cnn"
