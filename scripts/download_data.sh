#!/usr/bin/env bash
# Downloads Fashion-MNIST (default) or MNIST into data/<name>/ under the project root,
# where the engine looks for it. Each file is checked against its published MD5 sum
# and only then moved into place; files already present and valid are kept.
#
#   scripts/download_data.sh                  # Fashion-MNIST -> data/fashion-mnist/
#   scripts/download_data.sh mnist            # MNIST         -> data/mnist/
#   scripts/download_data.sh all              # both
#   scripts/download_data.sh mnist -d /data   # MNIST         -> /data/mnist/
#
# Environment: CNN_DATA_BASE_URL overrides the download location (a mirror; any URL
# curl or wget can read, file:// included) for the chosen dataset.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: download_data.sh [fashion-mnist|mnist|all] [-d|--dir PARENT]

Downloads the four IDX files (train/t10k images and labels, gzip-compressed) of the
dataset into PARENT/<dataset>/ (default PARENT: <project>/data), verifies their MD5
sums, and skips files that are already present and valid.
Set CNN_DATA_BASE_URL to download from a mirror instead of the official location.
EOF
}

die() {
  echo "download_data.sh: error: $*" >&2
  exit 1
}

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
project_dir="$(cd "${script_dir}/.." && pwd)"

dataset="fashion-mnist"
parent="${project_dir}/data"
while [[ $# -gt 0 ]]; do
  case "$1" in
    -h | --help)
      usage
      exit 0
      ;;
    -d | --dir)
      [[ $# -ge 2 ]] || die "$1 needs a directory"
      parent="$2"
      shift 2
      ;;
    fashion-mnist | fashion | mnist | all)
      dataset="$1"
      [[ "${dataset}" == "fashion" ]] && dataset="fashion-mnist"
      shift
      ;;
    *)
      usage >&2
      die "unknown argument '$1' (expected fashion-mnist, mnist or all)"
      ;;
  esac
done

files=(train-images-idx3-ubyte.gz train-labels-idx1-ubyte.gz
  t10k-images-idx3-ubyte.gz t10k-labels-idx1-ubyte.gz)

# Official locations and the MD5 sums of the original release files.
base_url_for() {
  case "$1" in
    fashion-mnist) echo "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/" ;;
    # yann.lecun.com is often unreachable; this mirror serves the identical files.
    mnist) echo "https://ossci-datasets.s3.amazonaws.com/mnist/" ;;
  esac
}

md5_for() {
  case "$1/$2" in
    fashion-mnist/train-images-idx3-ubyte.gz) echo 8d4fb7e6c68d591d4c3dfef9ec88bf0d ;;
    fashion-mnist/train-labels-idx1-ubyte.gz) echo 25c81989df183df01b3e8a0aad5dffbe ;;
    fashion-mnist/t10k-images-idx3-ubyte.gz) echo bef4ecab320f06d8554ea6380940ec79 ;;
    fashion-mnist/t10k-labels-idx1-ubyte.gz) echo bb300cfdad3c16e7a12a480ee83cd310 ;;
    mnist/train-images-idx3-ubyte.gz) echo f68b3c2dcbeaaa9fbdd348bbdeb94873 ;;
    mnist/train-labels-idx1-ubyte.gz) echo d53e105ee54ea40749a09fcbcd1e9432 ;;
    mnist/t10k-images-idx3-ubyte.gz) echo 9fb629c4189551a2d022fa330f9573f3 ;;
    mnist/t10k-labels-idx1-ubyte.gz) echo ec29112dd5afa0611ce80d1b7f02629c ;;
    *) die "no checksum for $1/$2" ;;
  esac
}

if command -v md5sum >/dev/null 2>&1; then
  md5_of() { md5sum "$1" | cut -d' ' -f1; }
elif command -v md5 >/dev/null 2>&1; then
  md5_of() { md5 -q "$1"; }
else
  die "neither md5sum nor md5 is installed; cannot verify downloads"
fi

if command -v curl >/dev/null 2>&1; then
  fetch() { curl -fL --retry 3 --connect-timeout 30 --silent --show-error -o "$2" "$1"; }
elif command -v wget >/dev/null 2>&1; then
  fetch() { wget --quiet --tries=3 --timeout=30 -O "$2" "$1"; }
else
  die "neither curl nor wget is installed; install one, or copy the files by hand"
fi

# Temporary files still lying around on exit (interrupted or failed downloads).
partials=()
cleanup() {
  local f
  for f in "${partials[@]+"${partials[@]}"}"; do
    rm -f -- "$f"
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

download_dataset() {
  local name="$1"
  local dest="${parent}/${name}"
  local base="${CNN_DATA_BASE_URL:-$(base_url_for "${name}")}"
  [[ "${base}" == */ ]] || base="${base}/"
  mkdir -p -- "${dest}" || die "cannot create ${dest}"
  echo "${name}: into ${dest}"

  local file want got tmp
  for file in "${files[@]}"; do
    want="$(md5_for "${name}" "${file}")"
    if [[ -f "${dest}/${file}" ]]; then
      got="$(md5_of "${dest}/${file}")"
      if [[ "${got}" == "${want}" ]]; then
        echo "  ${file}: present, checksum ok"
        continue
      fi
      echo "  ${file}: present but its MD5 is ${got}, expected ${want}; downloading again"
    fi

    tmp="${dest}/.${file}.part.$$"
    partials+=("${tmp}")
    echo "  ${file}: downloading ${base}${file}"
    if ! fetch "${base}${file}" "${tmp}"; then
      die "download of ${base}${file} failed (no network? try a mirror with CNN_DATA_BASE_URL)"
    fi
    got="$(md5_of "${tmp}")"
    if [[ "${got}" != "${want}" ]]; then
      die "${file} from ${base}: MD5 ${got}, expected ${want}; the download is corrupt or not the official file (nothing was kept)"
    fi
    mv -f -- "${tmp}" "${dest}/${file}"
    echo "  ${file}: checksum ok"
  done
}

case "${dataset}" in
  all)
    download_dataset fashion-mnist
    download_dataset mnist
    ;;
  *) download_dataset "${dataset}" ;;
esac
if [[ "${parent}" -ef "${project_dir}/data" ]]; then
  echo "done. The engine finds data under ${project_dir}/data by itself."
else
  echo "done. Point the engine at it with CNN_DATA_DIR=${parent} (or the data directory flag)."
fi
