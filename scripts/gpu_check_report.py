#!/usr/bin/env python3
"""Assembles the GPU check's results into one JSON file.

Usage: gpu_check_report.py CARRY_DIR WORK_DIR TEST_LOG OUTPUT_JSON
       gpu_check_report.py --sanitizer CARRY_DIR WORK_DIR OUTPUT_JSON

Keys: commit, kernels_tree, engine_tree, date, gpu, driver, cuda, cudnn, tests {passed,
failed, skipped, ...}, verify [...], train [...], and stages (what `scripts/gpu_check.sh
run` ran, and how each ended). Reads what that step left in its work folder, the test
log, and the carried commit ids. Every input may be missing or cut short (a stage that
failed or ran out of time): the report says what it has, and never claims the rest.

With --sanitizer: what `scripts/gpu_check.sh sanitize` left, one entry per
compute-sanitizer tool run (status, seconds, the errors it counted, the tests that ran).
"""
import datetime
import glob
import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from bench_report import load_json, nvcc_release, read_stages, read_text, uncommitted  # noqa: E402,E501
from record_run import write_json  # noqa: E402

# One finished test in ctest's output: "12/600 Test #571: Suite.Name ....***Skipped 0.6 sec".
# A parameterized GoogleTest's name goes on after a space ("Shapes/Sweep.Case/k3  #
# GetParam() = k3"), and a name longer than ctest's column gets no dots, so the status is
# found by its first word, not by where the name's spaces end.
CTEST_LINE = re.compile(
    r"^\s*(?P<finished>\d+)/(?P<total>\d+) Test\s+#\d+: (?P<name>\S+)(?: .*?)? \.*\s*"
    r"(\*\*\*)?(?P<status>(?:Passed|Failed|Skipped|Timeout|Exception|Not Run|SEGFAULT|ILLEGAL|"
    r"BUS|Child|Subprocess|Interrupt|Numerical|Other)\b.*?)\s+[\d.]+ sec\s*$")
# compute-sanitizer's closing line: "========= ERROR SUMMARY: 3 errors".
SANITIZER_SUMMARY = re.compile(r"ERROR SUMMARY: (\d+) errors?")
# The first line of one of its error records ("========= Invalid __global__ read of size
# 4 bytes", "========= Error: Race reported between ...", "========= Program hit
# cudaErrorLaunchFailure ..."); the record's further lines are indented.
SANITIZER_RECORD = re.compile(
    r"^========= (Invalid |Error: |Barrier error|Uninitialized |Program hit |Misaligned |"
    r"Out-of-range |Leaked )", re.M)
# GoogleTest's totals: "[  PASSED  ] 195 tests." and "[  FAILED  ] 2 tests, listed below:".
GTEST_TOTAL = re.compile(r"^\[  (PASSED|FAILED)  \] (\d+) tests?[.,]", re.M)
# One epoch of `cnn train --progress lines`: "Epoch 3/20 - 1500 steps - 2.4s - ...".
EPOCH_LINE = re.compile(r"^Epoch (\d+)/(\d+) - \d+ steps - ([\d.]+)s\b", re.M)


def parse_ctest(log):
    """Counts of the tests ctest finished, read line by line so that a run cut short still
    counts what it finished; total is what ctest meant to run. The log may hold several
    ctest runs (the GPU suites, then the CPU ones): a run starts where the finish count
    ("12/600") goes back or its total changes, and the totals add up."""
    passed, failed, skipped, total, failed_names = 0, 0, 0, 0, []
    count, run_total = 0, None
    for line in log.splitlines():
        m = CTEST_LINE.match(line)
        if not m:
            continue
        finished, of = int(m["finished"]), int(m["total"])
        if run_total is None or of != run_total or finished <= count:
            run_total = of
            total += run_total
        count = finished
        name, status = m["name"], m["status"]
        if status == "Passed":
            passed += 1
        elif status.startswith("Skipped") or status == "Not Run (Disabled)":
            skipped += 1
        else:  # Failed, Timeout, Exception: ..., Not Run (no executable)
            failed += 1
            failed_names.append(name)
    tests = {"passed": passed, "failed": failed, "skipped": skipped, "total": total}
    tests["complete"] = total > 0 and passed + failed + skipped == total
    if failed_names:
        tests["failed_names"] = failed_names
    return tests


def train_entry(work, name, stages):
    """One training run's row (stage train-NAME, NAME = IMPL or IMPL-seedN): from its
    report when it finished, else from the epochs its log shows (a run the budget cut),
    with test_accuracy None."""
    impl, _, seed_part = name.partition("-seed")
    seed = int(seed_part) if seed_part.isdigit() else 42
    report = load_json(os.path.join(work, f"train-{name}.json"))
    status = next((s["status"] for s in stages if s["stage"] == f"train-{name}"), None)
    if report is not None:
        secs = [e["seconds"] for e in report.get("history", [])]
        epochs_run, cap = report["epochs_run"], report["epochs_requested"]
        accuracy, model, batch = report["test_accuracy"], report["model"], report["batch_size"]
    else:
        epochs = EPOCH_LINE.findall(read_text(os.path.join(work, f"train-{name}.log")))
        if not epochs and status is None:
            return None
        secs = [float(e[2]) for e in epochs]
        epochs_run, cap = len(epochs), int(epochs[0][1]) if epochs else None
        accuracy, model, batch = None, "fashion-cnn", 32
    return {
        "model": model, "impl": impl, "batch_size": batch, "epochs_run": epochs_run,
        "test_accuracy": accuracy,
        "seconds_per_epoch": sum(secs) / len(secs) if secs else None,
        "first_epoch_seconds": secs[0] if secs else None,
        "status": status or "ok",
        "seed": seed,
        "recipe": "adam, batch 32, validation split 0.2, early stopping on val_loss patience 2 "
                  "(best weights restored)%s, seed %d" % (f", at most {cap} epochs" if cap else "",
                                                          seed),
    }


def train_names(work, stages):
    """native and cudnn first, then the extra seeds' runs, in the order they ran."""
    names = [s["stage"][len("train-"):] for s in stages if s["stage"].startswith("train-")]
    for path in sorted(glob.glob(os.path.join(work, "train-*.json"))):
        name = os.path.basename(path)[len("train-"):-len(".json")]
        if name not in names:
            names.append(name)
    fixed = ["native", "cudnn"]
    return fixed + [n for n in names if n not in fixed]


def sanitizer_run(stage, log):
    """One compute-sanitizer run: errors is None when the tool printed no summary (it was
    cut short or could not start), so that absence never reads as a clean run;
    errors_seen counts the error records it printed before, a lower bound."""
    summary = SANITIZER_SUMMARY.findall(log)
    totals = {kind: int(n) for kind, n in GTEST_TOTAL.findall(log)}
    ran = bool(totals)  # GoogleTest printed its totals: the suite finished
    return {"tool": stage["stage"], "status": stage["status"], "seconds": stage["seconds"],
            "errors": int(summary[-1]) if summary else None,
            "errors_seen": len(SANITIZER_RECORD.findall(log)),
            "tests_passed": totals.get("PASSED") if ran else None,
            "tests_failed": totals.get("FAILED", 0) if ran else None}


def common_keys(carry, work, now, cuda):
    gpu_line = read_text(os.path.join(work, "gpu.txt")).splitlines()
    gpu, driver = (gpu_line[0].split(", ") + ["", ""])[:2] if gpu_line else ("", "")
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "commit": read_text(os.path.join(carry, "commit")),
        "kernels_tree": read_text(os.path.join(carry, "kernels_tree")),
        "engine_tree": read_text(os.path.join(carry, "engine_tree")),
        "uncommitted": uncommitted(carry),
        "date": now.isoformat(timespec="seconds"),
        "gpu": gpu, "driver": driver,
        "cuda": nvcc_release() if cuda is None else cuda,
    }


def build_sanitizer_report(carry, work, now=None, cuda=None):
    stages = read_stages(os.path.join(work, "stages.txt"))
    runs = [sanitizer_run(s, read_text(os.path.join(work, s["stage"] + ".log")))
            for s in stages if s["stage"] != "build"]
    return {**common_keys(carry, work, now, cuda), "sanitizer": runs, "stages": stages}


def cudnn_version(log):
    """The cuDNN the binary loaded (`cnn devices`: "loaded: cuDNN X.Y.Z"), else the one
    CMake configured against ("-- cuDNN X.Y.Z: path"), else ""."""
    loaded = re.findall(r"loaded: cuDNN (\d+\.\d+\.\d+)", log)
    return (loaded or re.findall(r"cuDNN (\d+\.\d+\.\d+)", log) or [""])[0]


def build_report(carry, work, log, now=None, cuda=None):
    stages = read_stages(os.path.join(work, "stages.txt"))
    verify = []
    for path in sorted(glob.glob(os.path.join(work, "verify-*.json"))):
        verify += load_json(path) or []
    train = [t for t in (train_entry(work, n, stages) for n in train_names(work, stages)) if t]
    return {
        **common_keys(carry, work, now, cuda),
        "cudnn": cudnn_version(log),
        "tests": parse_ctest(log), "verify": verify, "train": train, "stages": stages,
    }


def main():
    if sys.argv[1] == "--sanitizer":
        carry, work, result_path = sys.argv[2:5]
        result = build_sanitizer_report(carry, work)
        shown = ("gpu", "sanitizer")
    else:
        carry, work, log_path, result_path = sys.argv[1:5]
        result = build_report(carry, work, read_text(log_path))
        shown = ("gpu", "tests", "stages")
    write_json(result_path, result)
    print(json.dumps({k: result[k] for k in shown}, indent=2))


if __name__ == "__main__":
    main()
