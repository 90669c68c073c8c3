#!/usr/bin/env python3
"""Merges the benchmark step's outputs into one bench.json (standard library only).

Usage: bench_report.py --carry .carry --work WORK_DIR --log BUILD_LOG --out bench.json

Reads what `scripts/gpu_check.sh bench` left in WORK_DIR, every file optional (a stage
that failed or ran out of time leaves a gap, recorded under "missing"):
  gpu.txt                          nvidia-smi: "name, driver"
  layers.json                      cnn bench --json: layer rows (under "rows" or "layers",
                                   or a list) and "epoch" (a training-only epoch time)
  layers-tiles128.json             the same rows with --conv-tiles 128 (igemm-128)
  layers-zoo-*.json                cnn bench --json of zoo models with batch norm (the seed
                                   models have none): their conv, pooling and batch-norm rows
  ours-{fp32,tf32}-b{32,256}.json  cnn train --report, one per precision and batch size
  ours-auto-{fp32,tf32}-b{32,256}.json  the same with --impl auto (each layer shape's
                                   faster of native and cuDNN): engine "ours-auto"
  ours-ttt*.json, ours-ttt*.recipe cnn train --target-accuracy --report: "time_to_target",
                                   and the recipe in words; one pair per recipe
  torch*.json                      bench/torch_bench.py --json: rows, skipped, time_to_92
  stages.txt                       "NAME STATUS SECONDS" per stage of the bench step

Writes: commit, kernels_tree, date, gpu, driver, cuda, cudnn, torch, epochs, layers,
peak_fraction_b256 (with peak_fp32_tflops and peak_fraction_basis beside it), time_to_92,
ratios, layers_conv_tiles_128, layers_zoo, and skipped/missing so a gap says why it is
there.
"""
import argparse
import datetime
import glob
import json
import math
import os
import re
import subprocess

from record_run import write_json  # bench/, beside this script

# FP32 without tensor cores, NVIDIA's datasheet figures (SMs x 128 lanes x 2 FLOPs x boost
# clock), by a part of the name nvidia-smi gives; the first match wins, so the PCIe and NVL
# boards (fewer SMs or lower clocks) come before the SXM parts they share a name with.
PEAK_FP32_TFLOPS = (
    ("H200 NVL", 60.0),
    ("H200", 67.0),
    ("H100 PCIe", 51.0),
    ("H100 NVL", 60.0),
    ("H100", 67.0),  # H100 SXM5, "NVIDIA H100 80GB HBM3"
)
# For a GPU the table does not name: the H200 SXM's, which the issues' figures are for.
DEFAULT_PEAK_TFLOPS = 67.0


def peak_for_gpu(gpu):
    """(TFLOP/s, where the figure came from) for nvidia-smi's name of the GPU."""
    for part, tflops in PEAK_FP32_TFLOPS:
        if part.lower() in (gpu or "").lower():
            return tflops, f"datasheet ({part})"
    return DEFAULT_PEAK_TFLOPS, f"assumed (H200 SXM's): no figure for {gpu or 'an unnamed GPU'}"
MODEL = "fashion-cnn"
LAYER_KEYS = ("model", "layer", "pass", "batch_size", "native_ms", "cudnn_ms", "gflop", "gbytes")
# Kept beside them when `cnn bench` gives them: what ran, and the layer's type.
LAYER_EXTRA_KEYS = ("type", "native_impl", "cudnn_impl")
EPOCH_KEYS = ("model", "engine", "batch_size", "precision", "seconds_per_epoch", "test_accuracy")

# fashion-cnn's multiply-add layers, per sample: (name, MACs of the forward pass,
# whether the input gradient is computed). The first convolution's input gradient is
# not needed (the input is data). Pooling, ReLU, dropout and Adam are memory-bound and
# left out: they are a fraction of a percent of the FLOPs.
FASHION_CNN_MACS = (
    ("conv2d", 28 * 28 * 64 * 1 * 7 * 7, False),
    ("conv2d_1", 14 * 14 * 128 * 64 * 3 * 3, True),
    ("conv2d_2", 14 * 14 * 128 * 128 * 3 * 3, True),
    ("conv2d_3", 7 * 7 * 256 * 128 * 3 * 3, True),
    ("conv2d_4", 7 * 7 * 256 * 256 * 3 * 3, True),
    ("dense", 2304 * 128, True),
    ("dense_1", 128 * 64, True),
    ("dense_2", 64 * 10, True),
)


def read_text(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def uncommitted(carry):
    """What the prepared tree had that its commit lacks: the `git status --porcelain` lines
    that `gpu_check.sh prepare` carried (none when the tree was clean)."""
    try:
        with open(os.path.join(carry, "uncommitted")) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        return []


def load_json(path):
    """The parsed file, or None when it is missing or not JSON (a stage that failed)."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def number(x):
    """A finite float, or None (JSON null) for anything else."""
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def mean_epoch_seconds(history):
    """Mean seconds of the epochs after the first (warm-up: autotuning, allocation)."""
    secs = [number(e.get("seconds")) for e in history if isinstance(e, dict)]
    secs = [s for s in secs if s is not None]
    measured = secs[1:] or secs
    return sum(measured) / len(measured) if measured else None


# ----------------------------------------------------------------------------- inputs

def ours_epoch_row(report, precision, engine="ours"):
    """One epochs[] row from a `cnn train --report` file."""
    history = report.get("history") or []
    row = {
        "model": report.get("model"), "engine": engine, "batch_size": report.get("batch_size"),
        "precision": precision, "seconds_per_epoch": mean_epoch_seconds(history),
        "test_accuracy": number(report.get("test_accuracy")),
        "epochs_run": report.get("epochs_run", len(history)),
    }
    if history:
        row["first_epoch_seconds"] = number(history[0].get("seconds"))
    if isinstance(report.get("implementations"), dict):
        row["implementations"] = report["implementations"]
    graphs = report.get("cuda_graphs")
    if isinstance(graphs, dict) and isinstance(graphs.get("nodes"), dict):
        row["step_graph_nodes"] = graphs["nodes"]  # what each replayed step launches
    return row


def layer_rows(bench):
    """The layer rows of a `cnn bench --json` file: the documented keys (null where
    missing) and, where present, the layer's type and which implementations ran."""
    if isinstance(bench, dict):
        bench = bench.get("layers", bench.get("rows", []))
    if not isinstance(bench, list):
        return []
    rows = []
    for r in bench:
        if isinstance(r, dict) and "layer" in r:
            row = {k: r.get(k) for k in LAYER_KEYS}
            row.update({k: r[k] for k in LAYER_EXTRA_KEYS if k in r})
            for k in ("native_ms", "cudnn_ms", "gflop", "gbytes"):
                row[k] = number(row[k])
            rows.append(row)
    return rows


def torch_epoch_row(r):
    row = {k: r.get(k) for k in EPOCH_KEYS}
    for k in ("epochs_run", "first_epoch_seconds", "train_seconds_per_epoch"):
        if k in r:
            row[k] = r[k]
    return row


def ours_time_to_target(report, recipe):
    """A time_to_92 entry from `cnn train --target-accuracy`, or None without one."""
    t = report.get("time_to_target") if isinstance(report, dict) else None
    if not isinstance(t, dict):
        return None
    return {"engine": "ours", "seconds": number(t.get("seconds_from_process_start")),
            "recipe": recipe, "target": t.get("target"), "epoch": t.get("epoch")}


# ------------------------------------------------------------------------ the figures

def is_conv(row):
    return "conv" in str(row.get("type") or row.get("layer") or "").lower()


def is_batchnorm(row):
    kind = str(row.get("type") or row.get("layer") or "").lower()
    return "batchnorm" in kind or "batch_norm" in kind


def formula_flops_per_sample():
    """(training FLOPs, forward FLOPs) per sample of fashion-cnn, from the layer shapes."""
    forward = sum(2 * macs for _, macs, _ in FASHION_CNN_MACS)
    # Backward: the weight gradient always, the input gradient where it is needed.
    backward = sum(2 * macs * (2 if needs_dx else 1) for _, macs, needs_dx in FASHION_CNN_MACS)
    return forward + backward, forward


def layer_rows_gflop_per_sample(layers, batch_size):
    """The layer rows' FLOPs per sample, every pass summed: a cross-check of the formula
    (the rows cover the conv and pooling layers, not the dense ones)."""
    total = sum(r["gflop"] for r in layers if r["model"] in (MODEL, None)
                and r["batch_size"] == batch_size and r["gflop"] is not None)
    return total / batch_size if total > 0 else None


def epoch_timing(bench_epoch, ours_report, batch_size):
    """(seconds, training samples, validation samples, source) of one epoch of ours at
    this batch size: `cnn bench`'s epoch (training only) when it ran at this batch size,
    else `cnn train`'s (whose epochs include the validation pass)."""
    if isinstance(bench_epoch, dict) and bench_epoch.get("batch_size") == batch_size:
        seconds = number(bench_epoch.get("seconds_per_epoch"))
        samples = bench_epoch.get("samples")
        if seconds and isinstance(samples, int) and samples > 0:
            return seconds, samples, 0, "cnn bench epoch (training steps only)"
    if isinstance(ours_report, dict):
        seconds = mean_epoch_seconds(ours_report.get("history") or [])
        images = ours_report.get("train_images")
        split = number(ours_report.get("validation_split")) or 0.0
        if seconds and isinstance(images, int) and images > 0:
            n_train = int(images * (1.0 - split))
            return seconds, n_train, images - n_train, \
                "cnn train epochs after the first (training steps + validation pass)"
    return None


def peak_fraction(bench_epoch, ours_report, layers, peak_tflops, batch_size=256):
    """Our epoch's FLOP rate at this batch size over the FP32 peak, and how it was got."""
    timing = epoch_timing(bench_epoch, ours_report, batch_size)
    if timing is None:
        return None, {"peak_fp32_tflops": peak_tflops,
                      "error": f"no epoch time of ours at batch {batch_size}"}
    seconds, n_train, n_val, time_source = timing
    train_flops, fwd_flops = formula_flops_per_sample()
    epoch_flops = n_train * train_flops + n_val * fwd_flops
    rate = epoch_flops / seconds
    rows = layer_rows_gflop_per_sample(layers, batch_size)
    basis = {
        "peak_fp32_tflops": peak_tflops, "batch_size": batch_size,
        "flop_source": "formula: fashion-cnn's conv and dense layers, forward + input "
                       "gradient (not for the first conv) + weight gradient; pooling, ReLU, "
                       "dropout and Adam left out",
        "train_gflop_per_sample": train_flops / 1e9, "forward_gflop_per_sample": fwd_flops / 1e9,
        "layer_rows_gflop_per_sample": rows,  # cross-check: conv and pool rows, every pass
        "time_source": time_source, "seconds_per_epoch": seconds,
        "train_samples": n_train, "validation_samples": n_val,
        "epoch_tflop": epoch_flops / 1e12, "achieved_tflops": rate / 1e12,
        "method": "(training samples x training FLOPs + validation samples x forward FLOPs) "
                  "/ epoch seconds, over the FP32 non-tensor peak",
    }
    return rate / (peak_tflops * 1e12), basis


def best_torch(epochs, batch_size, precision):
    """The fastest torch row of fashion-cnn at this batch size and precision."""
    rows = [r for r in epochs if not str(r["engine"]).startswith("ours") and r["model"] == MODEL
            and r["batch_size"] == batch_size and r["precision"] == precision
            and number(r["seconds_per_epoch"]) is not None]
    return min(rows, key=lambda r: r["seconds_per_epoch"], default=None)


def find_row(epochs, engine, batch_size, precision):
    for r in epochs:
        if (r["engine"], r["model"], r["batch_size"], r["precision"]) == \
                (engine, MODEL, batch_size, precision) and number(r["seconds_per_epoch"]):
            return r
    return None


def ratio(ours, theirs):
    if not ours or not theirs:
        return None
    return ours["seconds_per_epoch"] / theirs["seconds_per_epoch"]


def geomean_conv_ratio(layers, batch_size=256):
    """Geometric mean of native_ms / cudnn_ms over the conv layer rows (every pass)."""
    logs = [math.log(r["native_ms"] / r["cudnn_ms"]) for r in layers
            if is_conv(r) and r["batch_size"] == batch_size and r["model"] in (MODEL, None)
            and r["native_ms"] and r["cudnn_ms"] and r["native_ms"] > 0 and r["cudnn_ms"] > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def geomean_tile_ratio(large, small, batch_size=256):
    """Geometric mean of native_ms with 128x128 tiles / with 64x64 tiles over the conv
    rows (every pass) present in both."""
    def key(r):
        return (r["model"], r["layer"], r["pass"], r["batch_size"])
    base = {key(r): r["native_ms"] for r in small if is_conv(r)}
    logs = [math.log(r["native_ms"] / base[key(r)]) for r in large
            if is_conv(r) and r["batch_size"] == batch_size and r["model"] in (MODEL, None)
            and key(r) in base and r["native_ms"] and base[key(r)]
            and r["native_ms"] > 0 and base[key(r)] > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def geomean_batchnorm_ratio(layers, batch_size=256):
    """Geometric mean of native_ms / cudnn_ms over the batch-norm rows (every pass, every
    model) at this batch size."""
    logs = [math.log(r["native_ms"] / r["cudnn_ms"]) for r in layers
            if is_batchnorm(r) and r["batch_size"] == batch_size
            and r["native_ms"] and r["cudnn_ms"] and r["native_ms"] > 0 and r["cudnn_ms"] > 0]
    return math.exp(sum(logs) / len(logs)) if logs else None


def ratios(epochs, layers, layers_128=(), layers_tf32=(), layers_tf32_128=(), layers_zoo=()):
    """The figures of issue 4: seconds per epoch, ours over torch (above 1: ours slower)."""
    out = {"definition": "seconds per epoch of fashion-cnn, ours / torch (above 1: ours is "
                         "slower); conv: native_ms / cudnn_ms (above 1: our kernels slower)"}
    ours32 = find_row(epochs, "ours", 32, "fp32")
    out["ours_over_torch_eager_b32_fp32"] = ratio(ours32, find_row(epochs, "torch-eager", 32,
                                                                   "fp32"))
    for bs, prec in ((32, "fp32"), (256, "fp32"), (256, "tf32")):
        best = best_torch(epochs, bs, prec)
        out[f"ours_over_best_torch_b{bs}_{prec}"] = ratio(find_row(epochs, "ours", bs, prec), best)
        # The same with --impl auto: cuDNN wherever it was faster for a layer shape.
        out[f"ours_auto_over_best_torch_b{bs}_{prec}"] = ratio(
            find_row(epochs, "ours-auto", bs, prec), best)
        out[f"best_torch_b{bs}_{prec}"] = best["engine"] if best else None
    out["conv_native_over_cudnn_geomean_b256"] = geomean_conv_ratio(layers)
    # Below 1: --conv-tiles 128 is faster than the default 64x64 tiles.
    out["conv_tiles_128_over_64_geomean_b256"] = geomean_tile_ratio(layers_128, layers)
    # The same two figures with --tf32: our tensor-core kernels against cuDNN's TF32 ones,
    # and igemm-tf32-128 against igemm-tf32.
    out["conv_tf32_native_over_cudnn_geomean_b256"] = geomean_conv_ratio(layers_tf32)
    out["conv_tf32_tiles_128_over_64_geomean_b256"] = geomean_tile_ratio(layers_tf32_128,
                                                                         layers_tf32)
    # Batch norm, native over cuDNN, on the zoo models that have it.
    for bs in (32, 256):
        out[f"batchnorm_native_over_cudnn_geomean_b{bs}"] = geomean_batchnorm_ratio(layers_zoo, bs)
    return out


def recipe_id(path):
    """The recipe a time-to-92 file belongs to, from its name: ours-ttt.json and
    torch-ttt.json are "seed" (the seed recipe), ours-ttt-fast.json "fast", and so on."""
    stem = os.path.splitext(os.path.basename(path))[0]
    for prefix in ("ours-ttt", "torch-ttt"):
        if stem.startswith(prefix):
            return stem[len(prefix) + 1:] or "seed"
    return stem


def time_to_92_ratios(entries):
    """Per recipe, our seconds to the target over PyTorch eager's (above 1: ours slower);
    None where either run did not reach it."""
    out = {}
    ids = sorted({e.get("recipe_id") for e in entries if e.get("recipe_id")})
    for rid in ids:
        ours = next((e for e in entries if e.get("recipe_id") == rid
                     and e.get("engine") == "ours"), None)
        torch = next((e for e in entries if e.get("recipe_id") == rid
                      and e.get("engine") == "torch-eager"), None)
        a, b = (number(ours.get("seconds")) if ours else None,
                number(torch.get("seconds")) if torch else None)
        out[f"time_to_92_ours_over_torch_eager_{rid}"] = a / b if a and b else None
    return out


# --------------------------------------------------------------------------- assembly

def cudnn_from_torch(v):
    """torch.backends.cudnn.version() as "major.minor.patch" (9.x: 90100; 8.x: 8905)."""
    if not isinstance(v, int) or v <= 0:
        return ""
    major, rest = (v // 10000, v % 10000) if v >= 10000 else (v // 1000, v % 1000)
    return f"{major}.{rest // 100}.{rest % 100}"


def nvcc_release(nvcc=None):
    """The CUDA toolkit's release, from `nvcc` when given, else from nvcc on the PATH or in
    /usr/local/cuda ("" when none answers)."""
    for candidate in ((nvcc,) if nvcc else ("nvcc", "/usr/local/cuda/bin/nvcc")):
        try:
            text = subprocess.run([candidate, "--version"], capture_output=True, text=True).stdout
        except OSError:
            continue
        found = re.findall(r"release ([\d.]+)", text)
        if found:
            return found[0]
    return ""


def read_stages(path):
    """stages.txt: one "NAME STATUS SECONDS" line per stage (ok, failed-N or skipped)."""
    stages = []
    for line in read_text(path).splitlines():
        parts = line.split()
        if len(parts) == 3:
            stages.append({"stage": parts[0], "status": parts[1], "seconds": number(parts[2])})
    return stages


def build_report(carry, work, log_text, peak_tflops=None, now=None, cuda=None):
    """The bench.json object from the files in WORK (pure but for reading them).
    peak_tflops None: the GPU's FP32 peak from its name (peak_for_gpu)."""
    gpu_line = read_text(os.path.join(work, "gpu.txt")).splitlines()
    gpu, driver = ((gpu_line[0].split(", ") + ["", ""])[:2] if gpu_line else ("", ""))
    if peak_tflops is None:
        peak_tflops, peak_source = peak_for_gpu(gpu)
    else:
        peak_source = "given (--peak-tflops)"
    missing = []

    epochs, reports = [], {}
    for prec in ("fp32", "tf32"):
        for bs in (32, 256):
            name = f"ours-{prec}-b{bs}.json"
            rep = load_json(os.path.join(work, name))
            if isinstance(rep, dict):
                reports[(prec, bs)] = rep
                epochs.append(ours_epoch_row(rep, prec))
            else:
                missing.append(name)
    # --impl auto runs only where the bench had time for them: absent is not missing.
    for path in sorted(glob.glob(os.path.join(work, "ours-auto-*-b*.json"))):
        found = re.fullmatch(r"ours-auto-(fp32|tf32)-b(\d+)\.json", os.path.basename(path))
        rep = load_json(path)
        if found and isinstance(rep, dict):
            epochs.append(ours_epoch_row(rep, found.group(1), "ours-auto"))
        else:
            missing.append(os.path.basename(path))

    bench = load_json(os.path.join(work, "layers.json"))
    layers = layer_rows(bench)
    bench_epoch = bench.get("epoch") if isinstance(bench, dict) else None
    if not layers:
        missing.append("layers.json")
    extra = {}  # the conv layers again: 128x128 tiles, TF32, TF32 on 128x128 tiles
    for name in ("layers-tiles128", "layers-tf32", "layers-tf32-tiles128"):
        extra[name] = layer_rows(load_json(os.path.join(work, name + ".json")))
        if not extra[name]:
            missing.append(name + ".json")

    layers_zoo = []  # zoo models with batch norm, one file each
    zoo_files = sorted(glob.glob(os.path.join(work, "layers-zoo-*.json")))
    for path in zoo_files:
        rows = layer_rows(load_json(path))
        layers_zoo += rows
        if not rows:
            missing.append(os.path.basename(path))
    if not zoo_files:
        missing.append("layers-zoo-*.json")

    torch_version, torch_cudnn, skipped, time_to_92 = None, None, [], []
    # One run per recipe: the stage writes ours-ttt*.recipe before it starts, so a run
    # that failed or never finished still shows as missing.
    recipes = sorted(glob.glob(os.path.join(work, "ours-ttt*.recipe")))
    for recipe_path in recipes:
        stem = os.path.splitext(recipe_path)[0]
        entry = ours_time_to_target(load_json(stem + ".json"), read_text(recipe_path))
        if entry:
            entry["recipe_id"] = recipe_id(stem)
            time_to_92.append(entry)
        else:
            missing.append(os.path.basename(stem) + ".json (time_to_target)")
    if not recipes:
        missing.append("ours-ttt*.recipe")
    torch_files = sorted(glob.glob(os.path.join(work, "torch*.json")))
    if not torch_files:
        missing.append("torch*.json")
    for path in torch_files:
        t = load_json(path)
        if not isinstance(t, dict):
            missing.append(os.path.basename(path))
            continue
        torch_version = torch_version or t.get("torch")
        torch_cudnn = torch_cudnn or t.get("cudnn")
        epochs += [torch_epoch_row(r) for r in t.get("rows", []) if isinstance(r, dict)
                   and not t.get("time_to_92")]
        skipped += t.get("skipped", [])
        time_to_92 += [{**e, "recipe_id": recipe_id(path)} for e in t.get("time_to_92", [])
                       if isinstance(e, dict)]

    fraction, basis = peak_fraction(bench_epoch, reports.get(("fp32", 256)), layers, peak_tflops)
    cudnn = (re.findall(r"cuDNN (\d+\.\d+\.\d+)", log_text) or [""])[0]
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return {
        "commit": read_text(os.path.join(carry, "commit")),
        "kernels_tree": read_text(os.path.join(carry, "kernels_tree")),
        "uncommitted": uncommitted(carry),
        "date": now.isoformat(timespec="seconds"),
        "gpu": gpu, "driver": driver,
        "cuda": nvcc_release() if cuda is None else cuda,
        "cudnn": cudnn or cudnn_from_torch(torch_cudnn),
        "torch": torch_version,
        "epochs": epochs,
        "layers": layers,
        "peak_fraction_b256": fraction,
        "peak_fp32_tflops": peak_tflops,
        "peak_fp32_source": peak_source,
        "peak_fraction_basis": basis,
        "time_to_92": time_to_92,
        "ratios": {**ratios(epochs, layers, extra["layers-tiles128"], extra["layers-tf32"],
                            extra["layers-tf32-tiles128"], layers_zoo),
                   **time_to_92_ratios(time_to_92)},
        "layers_conv_tiles_128": extra["layers-tiles128"],
        "layers_tf32": extra["layers-tf32"],
        "layers_tf32_tiles_128": extra["layers-tf32-tiles128"],
        "layers_zoo": layers_zoo,
        "skipped": skipped,
        "missing": missing,
        "stages": read_stages(os.path.join(work, "stages.txt")),
    }


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--carry", required=True, help="the carried folder (commit, kernels_tree)")
    p.add_argument("--work", required=True, help="where the bench step left its files")
    p.add_argument("--log", default="", help="the build log (cmake prints the cuDNN version)")
    p.add_argument("--out", required=True, help="the bench.json to write")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="FP32 non-tensor peak of the GPU (default: from its name, e.g. "
                        "67 for an H200 or H100 SXM, 51 for an H100 PCIe)")
    args = p.parse_args(argv)
    result = build_report(args.carry, args.work, read_text(args.log), args.peak_tflops)
    write_json(args.out, result)
    print(json.dumps({k: result[k] for k in ("gpu", "peak_fraction_b256", "ratios",
                                             "time_to_92", "missing")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
