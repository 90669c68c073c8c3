#!/usr/bin/env python3
"""Wrap a `cnn train --report` file into a record for bench/results/: the commit, the date,
the machine and the command beside the report, with the figures people look for first
(seconds per epoch, test accuracy, the test accuracy of every epoch when the run was timed
to a target). Written atomically.

Usage: record_run.py REPORT OUT --command "cnn train ..." [--commit SHA] [--note TEXT]
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def write_json(path, data):
    """Writes data as indented JSON to path atomically: a file beside it, then a rename, so
    a run killed midway leaves the previous file whole."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)),
                               prefix="." + os.path.basename(path) + ".")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def record(report, command, commit, note, now):
    out = {
        "commit": commit,
        "date": now.isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "os": platform.platform()},
        "command": command,
    }
    if note:
        out["note"] = note
    history = report.get("history", [])
    out["seconds_per_epoch"] = [e.get("seconds") for e in history]
    out["epochs_run"] = report.get("epochs_run", len(history))
    out["best_epoch"] = report.get("best_epoch")
    out["test_accuracy"] = report.get("test_accuracy")
    target = report.get("time_to_target")
    if isinstance(target, dict):
        out["test_accuracy_per_epoch"] = [e.get("test_accuracy")
                                          for e in target.get("evaluations", [])]
        out["time_to_target"] = {k: target.get(k) for k in
                                 ("target", "reached", "epoch", "seconds_from_process_start")}
    out["report"] = report
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("report")
    p.add_argument("out")
    p.add_argument("--command", required=True, help="the command that wrote the report")
    p.add_argument("--commit", default=None, help="default: git rev-parse HEAD")
    p.add_argument("--note", default="")
    args = p.parse_args(argv)
    with open(args.report) as f:
        report = json.load(f)
    commit = args.commit or subprocess.check_output(["git", "rev-parse", "HEAD"],
                                                    text=True).strip()
    now = datetime.datetime.now(datetime.timezone.utc)
    result = record(report, args.command, commit, args.note, now)
    write_json(args.out, result)
    print("wrote", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
