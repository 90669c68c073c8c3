#!/usr/bin/env bash
# The main job on a fresh machine: set up, then train on Fashion-MNIST and evaluate.
# With a usable GPU (`cnn devices` lists one) it trains fashion-cnn there with the seed
# lectures' recipe (batch 32, validation split 0.2, early stopping on val_loss with
# patience 2, at most 20 epochs, Adam), for which they report over 0.92 test accuracy.
# Otherwise it trains mnist-cnn for 2 epochs on the CPU: about 10 s on two cores, about
# 0.86 test accuracy. Extra arguments go to `cnn train`, and replace the defaults they
# name (`bash scripts/train.sh --epochs 5`). The report, its history and the weights go
# to runs/MODEL.json, runs/MODEL.csv and runs/MODEL.safetensors unless --report, --csv or
# --save say otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
mkdir -p runs
cnn=${BUILD_DIR:-build}/apps/cnn/cnn

# given FLAG ARGS...: whether ARGS set FLAG ("--flag value" or "--flag=value").
given() {
  local flag=$1 a
  shift
  for a in "$@"; do [[ $a == "$flag" || $a == "$flag="* ]] && return 0; done
  return 1
}

devices=$("$cnn" devices)
if grep -q '^cuda:' <<<"$devices"; then
  defaults=(--model fashion-cnn --device cuda --epochs 20 --batch-size 32
    --validation-split 0.2 --patience 2 --optimizer adam)
else
  # Say why the CPU default runs ("no usable GPU: ..."), before its own device line.
  echo "train: $(grep -m 1 '^no usable GPU' <<<"$devices" || echo 'no usable GPU'); the CPU default"
  defaults=(--model mnist-cnn --device cpu --epochs 2 --validation-split 0.1)
fi
args=()
for ((i = 0; i < ${#defaults[@]}; i += 2)); do
  given "${defaults[i]}" "$@" || args+=("${defaults[i]}" "${defaults[i + 1]}")
done
# The model the run trains, for the output names.
model=${defaults[1]} prev=""
for a in "$@"; do
  [[ $prev == --model ]] && model=$a
  [[ $a == --model=* ]] && model=${a#--model=}
  prev=$a
done
model=$(basename "${model%.json}")
given --report "$@" || args+=(--report "runs/$model.json")
given --save "$@" || args+=(--save "runs/$model.safetensors")
exec "$cnn" train "${args[@]}" "$@"
