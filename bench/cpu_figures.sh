#!/usr/bin/env bash
# The CPU backend's figures, recorded with the machine, commit and date:
#   cnn train --model mnist-cnn --device cpu --epochs 2 on the full Fashion-MNIST
#   (target: test accuracy >= 0.85, one epoch under 60 s on a 2-core machine).
# Writes bench/results/cpu-train-DATE-SHORTSHA.json. Needs a build (scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build}
sha=$(git rev-parse --short HEAD)
date=$(date -u +%Y-%m-%d)
out=bench/results/cpu-train-$date-$sha.json
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$build/apps/cnn/cnn" train --model mnist-cnn --device cpu --epochs 2 --seed 42 \
  --report "$tmp/report.json" | tee "$tmp/log.txt"
python3 bench/record_run.py "$tmp/report.json" "$out" \
  --command "cnn train --model mnist-cnn --device cpu --epochs 2 --seed 42"
