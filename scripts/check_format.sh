#!/usr/bin/env bash
# Whether every C++ and CUDA source of the tree is as clang-format (.clang-format) writes
# it; prints the files that are not. Run by ctest as `format`. Formatters of different
# major versions break some lines differently, so only the version the tree is kept with
# (CNN_CLANG_FORMAT_MAJOR, 14: Debian 12's) judges; another, or none, or a tree that is
# not a git checkout, skips (status 77) with the reason. Fix with:
#   git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
want=${CNN_CLANG_FORMAT_MAJOR:-14}
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null; then
  echo "format: skipped, no $cf"
  exit 77
fi
have=$("$cf" --version | sed -n 's/.*version \([0-9]*\).*/\1/p')
if [[ $have != "$want" ]]; then
  echo "format: skipped, $cf is version ${have:-unknown}, the tree is kept with $want"
  exit 77
fi
if ! files=$(git ls-files '*.cpp' '*.h' '*.cu' '*.cuh' 2>/dev/null) || [[ -z $files ]]; then
  echo "format: skipped, not a git checkout"
  exit 77
fi
bad=()
while IFS= read -r f; do
  "$cf" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done <<<"$files"
if ((${#bad[@]})); then
  echo "format: ${#bad[@]} file(s) differ from clang-format's output:"
  printf '  %s\n' "${bad[@]}"
  exit 1
fi
echo "format: $(wc -l <<<"$files") files as clang-format $have writes them"
