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
python3 - "$tmp/report.json" "$out" "$sha" <<'PY'
import json, os, platform, subprocess, sys, datetime
report = json.load(open(sys.argv[1]))
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), platform.processor())
record = {
    "commit": subprocess.check_output(["git", "rev-parse", "HEAD"], text=True).strip(),
    "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "machine": {"cpu": cpu, "cores": os.cpu_count(), "os": platform.platform()},
    "command": "cnn train --model mnist-cnn --device cpu --epochs 2 --seed 42",
    "seconds_per_epoch": [e["seconds"] for e in report["history"]],
    "test_accuracy": report["test_accuracy"],
    "report": report,
}
tmp = sys.argv[2] + ".tmp"
with open(tmp, "w") as f:
    json.dump(record, f, indent=2)
    f.write("\n")
os.replace(tmp, sys.argv[2])
print("wrote", sys.argv[2])
PY
