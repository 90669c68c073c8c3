#!/usr/bin/env python3
"""How the CPU backend's training step scales with its threads, side by side in one run:
`cnn profile --device cpu --threads T` for each model, batch size and thread count, with
the step time, images per second and the speed-up over one thread, recorded with the
commit, the date and the machine. Written atomically.

--openblas-cores Haswell,auto also runs each of them under each OpenBLAS kernel family
(OPENBLAS_CORETYPE; auto: unset, OpenBLAS's own pick), side by side: each row names the
kernels the profile reports (cpu_gemm) and its speed-up over the first family's.

Usage: cpu_threads.py OUT [--cnn build/apps/cnn/cnn] [--threads 1,2]
                          [--runs fashion-cnn:32,vgg-small:128] [--steps 10] [--warmup 3]
                          [--openblas-cores Haswell,auto]
"""
import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile

from record_run import cpu_name, write_json  # bench/, beside this script


def parse_runs(text):
    runs = []
    for item in text.split(","):
        model, sep, batch = item.partition(":")
        if not sep or not model or not batch.isdigit() or int(batch) < 1:
            raise ValueError(f"--runs wants MODEL:BATCH items, not '{item}'")
        runs.append((model, int(batch)))
    return runs


def parse_threads(text):
    counts = [int(t) for t in text.split(",")]
    if not counts or any(t < 1 for t in counts):
        raise ValueError(f"--threads wants counts of at least 1, not '{text}'")
    return counts


def parse_cores(text):
    """None (the inherited environment) or a list of OPENBLAS_CORETYPE values, auto: unset."""
    if text is None:
        return [None]
    cores = text.split(",")
    if any(not c or not c.isalnum() for c in cores) or len(set(cores)) != len(cores):
        raise ValueError(f"--openblas-cores wants distinct names such as Haswell,auto, "
                         f"not '{text}'")
    return cores


def environment_for(core):
    env = dict(os.environ)
    if core == "auto":
        env.pop("OPENBLAS_CORETYPE", None)
    elif core is not None:
        env["OPENBLAS_CORETYPE"] = core
    return env


def profile(cnn, model, batch, threads, steps, warmup, workdir, core=None):
    out = os.path.join(workdir, f"{model}-{batch}-{threads}-{core}.json")
    cmd = [cnn, "profile", "--model", model, "--device", "cpu", "--batch-size", str(batch),
           "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup),
           "--json", out]
    done = subprocess.run(cmd, capture_output=True, text=True, env=environment_for(core))
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    with open(out) as f:
        return json.load(f)


def rows_from_profiles(profiles):
    """profiles: [(model, batch, threads, profile JSON, OpenBLAS core)] -> rows with the
    speed-up over the same model, batch and core on one thread, and over the same model,
    batch and threads on the first core listed (None where that was not measured)."""
    rows = []
    for model, batch, threads, p, core in profiles:
        if p.get("cpu_threads") != threads:
            raise ValueError(f"{model} at batch {batch}: asked for {threads} threads, the "
                             f"profile says {p.get('cpu_threads')}")
        step_ms = p["step_ms"]
        row = {"model": model, "batch_size": batch, "threads": threads}
        if core is not None:
            row["openblas_coretype"] = core
        row.update({"cpu_gemm": p.get("cpu_gemm"), "step_ms": step_ms,
                    "images_per_second": batch * 1000.0 / step_ms})
        rows.append(row)
    first_core = rows[0].get("openblas_coretype") if rows else None

    def same_run(a, b):
        return a["model"] == b["model"] and a["batch_size"] == b["batch_size"]

    for row in rows:
        base = [r for r in rows if same_run(r, row) and r["threads"] == 1
                and r.get("openblas_coretype") == row.get("openblas_coretype")]
        row["speedup_over_one_thread"] = base[0]["step_ms"] / row["step_ms"] if base else None
        if first_core is not None:
            base = [r for r in rows if same_run(r, row) and r["threads"] == row["threads"]
                    and r["openblas_coretype"] == first_core]
            row["speedup_over_first_core"] = base[0]["step_ms"] / row["step_ms"]
    return rows


def commit_of(build):
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return (build or {}).get("commit")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--cnn", default="build/apps/cnn/cnn")
    ap.add_argument("--threads", default=None, help="counts, e.g. 1,2,4 (default: 1 to nproc)")
    ap.add_argument("--runs", default="fashion-cnn:32,vgg-small:128")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--openblas-cores", default=None,
                    help="OPENBLAS_CORETYPE values to compare, e.g. Haswell,auto")
    args = ap.parse_args(argv)
    try:
        runs = parse_runs(args.runs)
        counts = parse_threads(args.threads or ",".join(
            str(t) for t in range(1, (os.cpu_count() or 1) + 1)))
        cores = parse_cores(args.openblas_cores)
        with tempfile.TemporaryDirectory() as work:
            profiles = []
            for model, batch in runs:
                for core in cores:
                    for threads in counts:
                        p = profile(args.cnn, model, batch, threads, args.steps, args.warmup,
                                    work, core)
                        profiles.append((model, batch, threads, p, core))
                        print(f"{model} batch {batch}, {threads} thread(s), "
                              f"{p.get('cpu_gemm')}: {p['step_ms']:.1f} ms per step", flush=True)
        rows = rows_from_profiles(profiles)
    except (ValueError, RuntimeError, OSError) as e:
        print(f"cpu_threads: {e}", file=sys.stderr)
        return 1
    build = profiles[0][3].get("build") if profiles else None
    record = {
        "commit": commit_of(build),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"cpu": cpu_name(), "cores": os.cpu_count(), "os": platform.platform(),
                    "openblas_coretype_env": os.environ.get("OPENBLAS_CORETYPE")},
        "build": build,
        "steps": args.steps,
        "warmup": args.warmup,
        "rows": rows,
    }
    write_json(args.out, record)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
