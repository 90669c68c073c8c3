#!/usr/bin/env python3
"""Summarises a fuzzing run of scripts/fuzz.sh into one JSON record for bench/results/.

Usage: fuzz_summary.py BUILD_DIR SECONDS OUT.json TARGET...

Reads BUILD_DIR/fuzz-TARGET.log (libFuzzer's stderr with -print_final_stats=1) and
BUILD_DIR/artifacts/TARGET/ (what it saved on a finding), and writes: commit, date,
machine, seconds per target, and per target its executions, executions per second, peak
memory, corpus units, and the inputs it kept as findings (none is the point).
"""
import datetime
import os
import platform
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench"))
from record_run import cpu_name, write_json  # noqa: E402

STAT = re.compile(r"^stat::(\w+):\s+(\d+)", re.M)
DONE = re.compile(r"^Done (\d+) runs in (\d+) second", re.M)
# "#123456	DONE   cov: 812 ft: 2090 corp: 310/44Kb ..." (the last status line)
STATUS = re.compile(r"\bcov: (\d+) ft: (\d+) corp: (\d+)/")


def target_record(build_dir, target):
    log_path = os.path.join(build_dir, f"fuzz-{target}.log")
    try:
        with open(log_path, errors="replace") as f:
            log = f.read()
    except OSError:
        return {"target": target, "error": f"no log {log_path}"}
    stats = {k: int(v) for k, v in STAT.findall(log)}
    done = DONE.findall(log)
    status = STATUS.findall(log)
    art_dir = os.path.join(build_dir, "artifacts", target)
    findings = sorted(os.listdir(art_dir)) if os.path.isdir(art_dir) else []
    runs, secs = (int(done[-1][0]), int(done[-1][1])) if done else (None, None)
    return {
        "target": target,
        "completed": bool(done),  # libFuzzer's "Done": it ran its time out
        "executions": stats.get("number_of_executed_units", runs),
        "seconds": secs,
        "executions_per_second": stats.get("average_exec_per_sec"),
        "peak_rss_mb": stats.get("peak_rss_mb"),
        "coverage": int(status[-1][0]) if status else None,
        "features": int(status[-1][1]) if status else None,
        "corpus_units": int(status[-1][2]) if status else None,
        "findings": findings,
    }


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def main(argv):
    if len(argv) < 5:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    build_dir, seconds, out, targets = argv[1], int(argv[2]), argv[3], argv[4:]
    records = [target_record(build_dir, t) for t in targets]
    write_json(out, {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "system": platform.platform()},
        "sanitizers": "address, undefined (libFuzzer, clang)",
        "seconds_per_target": seconds,
        "targets": records,
        "findings": sum(len(r.get("findings", [])) for r in records),
    })
    print(f"fuzz: summary written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
