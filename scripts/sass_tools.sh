#!/usr/bin/env bash
# Fetches NVIDIA's SASS disassemblers, cuobjdump and nvdisasm, into .tools/sass/bin for the
# kernel_resources test's SASS census (scripts/kernel_resources.py), on a machine whose
# CUDA toolkit lacks them (slim toolkits ship nvcc and ptxas only). Without a census that
# test checks registers, spills and shared memory but reports the budget's SASS rules
# (no tensor-core instruction in strict FP32, no generic load or store, ...) unchecked.
#
# The tools come from NVIDIA's own PyPI wheels (nvidia-cuda-cuobjdump and
# nvidia-cuda-nvdisasm), pinned by version and SHA-256 in scripts/sass_tools.txt and
# unpacked, not installed: nothing outside .tools/ changes. x86-64 Linux only (the pins
# are that platform's wheels). Exit status: 0 when the tools are there (fetched now or
# before), 1 when they could not be had (no pip, no network, a hash mismatch), with one
# line saying why. Environment: SASS_TOOLS_DIR (default .tools/sass).
set -euo pipefail
cd "$(dirname "$0")/.."

dir=${SASS_TOOLS_DIR:-.tools/sass}
bin=$dir/bin

works() { "$bin/cuobjdump" --version >/dev/null 2>&1 && [[ -x $bin/nvdisasm ]]; }

if works; then
  exit 0
fi
if [[ $(uname -sm) != "Linux x86_64" ]]; then
  echo "sass_tools: the pinned wheels are for x86-64 Linux, not $(uname -sm)" >&2
  exit 1
fi
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "sass_tools: python3 has no pip to fetch the wheels with" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if ! python3 -m pip download --quiet --timeout 30 --retries 2 --no-deps --only-binary=:all: \
  --require-hashes -r scripts/sass_tools.txt -d "$work" >"$work/pip.log" 2>&1; then
  # pip's first ERROR line says why (no network, no such version, a hash mismatch).
  why=$(grep -m 1 '^ERROR' "$work/pip.log" || grep -v '^ *$' "$work/pip.log" | tail -n 1 || true)
  echo "sass_tools: pip could not fetch the pinned wheels: ${why#ERROR: }" >&2
  exit 1
fi

# A wheel is a zip file; the tools lie under nvidia/cu*/bin/. Unpacked into a fresh
# folder and moved into place whole, so an interrupted fetch leaves no half a tool.
mkdir -p "$dir"
staged=$(mktemp -d "$dir/.bin.XXXXXX")
python3 - "$work" "$staged" <<'EOF'
import glob, os, stat, sys, zipfile

work, out = sys.argv[1], sys.argv[2]
wanted = {"cuobjdump", "nvdisasm"}
for wheel in glob.glob(os.path.join(work, "*.whl")):
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = os.path.basename(info.filename)
            if name in wanted and "/bin/" in info.filename:
                with z.open(info) as src, open(os.path.join(out, name), "wb") as dst:
                    dst.write(src.read())
                os.chmod(os.path.join(out, name), stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP |
                         stat.S_IROTH | stat.S_IXOTH)
                wanted.discard(name)
if wanted:
    sys.exit("sass_tools: the wheels hold no " + ", ".join(sorted(wanted)))
EOF
rm -rf "$bin"
chmod 755 "$staged"
mv "$staged" "$bin"
if ! works; then
  echo "sass_tools: $bin/cuobjdump does not run here" >&2
  exit 1
fi
echo "sass_tools: $("$bin/cuobjdump" --version | tail -n 2 | head -n 1) in $bin"
