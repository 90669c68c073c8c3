#!/usr/bin/env python3
"""Assembles the GPU check's results into one JSON file.

Usage: gpu_check_report.py CARRY_DIR WORK_DIR TEST_LOG OUTPUT_JSON

Keys: commit, kernels_tree, engine_tree, date, gpu, driver, cuda, cudnn, tests {passed,
failed, skipped}, verify [...], train [...]. Reads what scripts/gpu_check.sh run left in
its work folder, the test log, and the carried commit ids.
"""
import datetime
import glob
import json
import os
import re
import subprocess
import sys


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def main():
    carry, out, log_path, result_path = sys.argv[1:5]
    log = read(log_path)
    gpu_line = read(os.path.join(out, "gpu.txt")).splitlines()
    gpu, driver = (gpu_line[0].split(", ") + ["", ""])[:2] if gpu_line else ("", "")
    nvcc = subprocess.run(["nvcc", "--version"], capture_output=True, text=True).stdout
    cuda = (re.findall(r"release ([\d.]+)", nvcc) or [""])[0]
    cudnn = (re.findall(r"cuDNN (\d+\.\d+\.\d+)", log) or [""])[0]

    tests = {"passed": 0, "failed": 0, "skipped": 0}
    m = re.search(r"(\d+)% tests passed, (\d+) tests failed out of (\d+)", log)
    if m:
        failed, total = int(m.group(2)), int(m.group(3))
        skipped = len(re.findall(r"\*\*\*Skipped|Not Run", log))
        tests = {"passed": total - failed - skipped, "failed": failed, "skipped": skipped}

    verify = []
    for path in sorted(glob.glob(os.path.join(out, "verify-*.json"))):
        try:
            verify += json.load(open(path))
        except (OSError, ValueError):
            pass

    train = []
    for impl in ("native", "cudnn"):
        path = os.path.join(out, f"train-{impl}.json")
        if not os.path.exists(path):
            continue
        r = json.load(open(path))
        secs = [e["seconds"] for e in r["history"]]
        train.append({
            "model": r["model"], "impl": impl, "batch_size": r["batch_size"],
            "epochs_run": r["epochs_run"], "test_accuracy": r["test_accuracy"],
            "seconds_per_epoch": sum(secs) / len(secs) if secs else None,
            "recipe": "adam, batch 32, validation split 0.2, early stopping on val_loss "
                      "patience 2, at most %d epochs" % r["epochs_requested"],
        })

    result = {
        "commit": read(os.path.join(carry, "commit")),
        "kernels_tree": read(os.path.join(carry, "kernels_tree")),
        "engine_tree": read(os.path.join(carry, "engine_tree")),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gpu": gpu, "driver": driver, "cuda": cuda, "cudnn": cudnn,
        "tests": tests, "verify": verify, "train": train,
    }
    tmp = result_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    os.replace(tmp, result_path)
    print(json.dumps({k: result[k] for k in ("gpu", "tests")}, indent=2))


if __name__ == "__main__":
    main()
