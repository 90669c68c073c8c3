#!/usr/bin/env python3
"""PyTorch peer of `cnn train`: the same models, recipe and data, timed per epoch.

Each row trains one (model, variant, precision, batch size) the way the engine does: the
model of the same description (models/NAME.json, built by bench/torch_models.py), Keras
initialisation (glorot_uniform kernels, zero biases), Adam (lr 1e-3 unless --lr, betas 0.9
and 0.999, eps 1e-7; --lr-schedule onecycle as the engine's), optional flips and shifts of
the training images (--augment-flip, --augment-shift, as the engine's, on the device),
channels-first images scaled to [0, 1] as byte / 255, the last 20% of
the training set held out for validation as Keras does, a fresh shuffle every epoch,
optional early stopping on val_loss with the best weights restored, then the test set.
The whole dataset lives on the device as one tensor; a step gathers its batch there.

Variants (the engine names of the rows):
  eager                   torch-eager                    cudnn.benchmark = True
  channels-last           torch-eager-channels-last      the same, NHWC memory format
  compile-reduce-overhead torch-compile-reduce-overhead  torch.compile, CUDA graphs
  compile-max-autotune    torch-compile-max-autotune     torch.compile, autotuned kernels
A variant that fails (no Triton, no compiler, ...) becomes a skipped row with the reason.

Precisions: "fp32" is strict IEEE float32 in cuDNN convolutions and cuBLAS GEMMs (no
TF32 tensor cores); "tf32" allows TF32 in both. Every row states its precision and the
flags that were in force.

Timing: seconds_per_epoch covers what the engine's history "seconds" covers (shuffle,
the training steps and the validation pass, with torch.cuda.synchronize at both ends),
averaged over the epochs after the first; the first epoch (compilation, autotuning,
cuDNN benchmarking) is reported apart. train_seconds_per_epoch covers the training
steps alone.

Time to target (--target-accuracy): one run, the first one of the process, from the top
of this script (before `import torch`; the import time is reported too) to the end of
the first epoch whose test accuracy reaches the target; the test set is evaluated after
every epoch for that.

Examples:
  python3 bench/torch_bench.py --data ../shared/data/fashion-mnist --json torch.json
  python3 bench/torch_bench.py --device cpu --limit 512 --test-limit 256 --epochs 1 \\
      --variants eager --precisions fp32 --batch-sizes 32 --json /tmp/smoke.json
  python3 bench/torch_bench.py --target-accuracy 0.92 --variants eager --batch-sizes 32
"""
import time

# Taken before anything else, so time-to-target counts the interpreter's imports too.
PROCESS_START = time.perf_counter()

import argparse  # noqa: E402
import copy  # noqa: E402
import datetime  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402

_before_torch = time.perf_counter()
try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # reported, not a traceback: the caller records "no torch"
    sys.exit(f"torch_bench: cannot import torch: {e}")
IMPORT_TORCH_SECONDS = time.perf_counter() - _before_torch

from record_run import write_json as write_json_atomic  # noqa: E402
from torch_models import PARAMS, build_model, model_path  # noqa: E402

VARIANTS = {
    "eager": "torch-eager",
    "channels-last": "torch-eager-channels-last",
    "compile-reduce-overhead": "torch-compile-reduce-overhead",
    "compile-max-autotune": "torch-compile-max-autotune",
}

ADAM = dict(betas=(0.9, 0.999), eps=1e-7)  # the rate comes from --lr (Keras: 1e-3)
OPTIMIZER_NOTE = ("torch.optim.Adam(lr={}, betas=(0.9, 0.999), eps=1e-7{}); PyTorch adds "
                  "eps after bias-correcting v, Keras and the engine before: a difference "
                  "of order 1e-7 in the denominator")


# ----------------------------------------------------------------------------- data

def read_idx(path):
    """An IDX file (gz or raw) as (dims, bytes of the payload)."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndims = raw[3]
    dims = struct.unpack(">" + "I" * ndims, raw[4:4 + 4 * ndims])
    payload = raw[4 + 4 * ndims:]
    if len(payload) != math.prod(dims):
        raise ValueError(f"{path}: {len(payload)} bytes of data for dims {dims}")
    return dims, payload


def find_idx(data_dir, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError(f"{data_dir}: no {stem}[.gz]")


def load_split(data_dir, prefix, limit, device):
    """Images as float32 N x 1 x 28 x 28 in [0, 1] and labels as int64, on the device."""
    idims, ibytes = read_idx(find_idx(data_dir, f"{prefix}-images-idx3-ubyte"))
    ldims, lbytes = read_idx(find_idx(data_dir, f"{prefix}-labels-idx1-ubyte"))
    if idims[0] != ldims[0]:
        raise ValueError(f"{data_dir}: {idims[0]} {prefix} images but {ldims[0]} labels")
    n = idims[0] if not limit else min(limit, idims[0])
    pixels = torch.frombuffer(bytearray(ibytes), dtype=torch.uint8)
    images = pixels.view(idims[0], 1, idims[1], idims[2])[:n]
    # byte / 255 in double, then float32: the engine's table gives the same floats.
    images = (images.to(torch.float64) / 255.0).to(torch.float32)
    labels = torch.frombuffer(bytearray(lbytes), dtype=torch.uint8)[:n].to(torch.int64)
    return images.to(device), labels.to(device)


def split_validation(images, labels, fraction):
    """Keras's validation_split: the LAST fraction of the samples, not shuffled first."""
    n_train = int(images.shape[0] * (1.0 - fraction))
    return (images[:n_train], labels[:n_train]), (images[n_train:], labels[n_train:])


# ------------------------------------------------------------------------ precision

def set_precision(precision):
    """Strict FP32 or TF32 for cuDNN convolutions and cuBLAS GEMMs; returns the flags.

    PyTorch 2.9+ spells it fp32_precision = "ieee" | "tf32". The matmul side goes through
    set_float32_matmul_precision, which sets the CUDA and oneDNN matmul flags together:
    setting only one of them leaves a mix that torch.get_float32_matmul_precision (which
    Inductor calls) refuses. Older versions have the allow_tf32 booleans.
    """
    tf32 = precision == "tf32"
    if hasattr(torch.backends, "fp32_precision"):
        if not tf32:
            torch.backends.fp32_precision = "ieee"
        torch.set_float32_matmul_precision("high" if tf32 else "highest")
        torch.backends.cuda.matmul.fp32_precision = "tf32" if tf32 else "ieee"
        # cuDNN-wide as well as for its convolutions: Inductor's own convolution kernels
        # read the cuDNN-wide setting (2.11), ATen's convolutions the conv one.
        torch.backends.cudnn.fp32_precision = "tf32" if tf32 else "ieee"
        torch.backends.cudnn.conv.fp32_precision = "tf32" if tf32 else "ieee"
        return {"api": "fp32_precision",
                "matmul": torch.backends.cuda.matmul.fp32_precision,
                "cudnn_conv": torch.backends.cudnn.conv.fp32_precision}
    torch.backends.cuda.matmul.allow_tf32 = tf32
    torch.backends.cudnn.allow_tf32 = tf32
    torch.set_float32_matmul_precision("high" if tf32 else "highest")
    return {"api": "allow_tf32", "matmul_allow_tf32": tf32, "cudnn_allow_tf32": tf32}


# ------------------------------------------------------------------------- training

def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Runner:
    """The step and evaluation functions of one variant, over one model."""

    def __init__(self, model, variant, batch_size, device, args, steps_per_epoch):
        self.model = model
        self.batch_size = batch_size
        self.channels_last = variant == "channels-last"
        self.cudagraphs = False
        fused = device.type == "cuda"
        # Fused Adam: one launch over all parameters, as the engine's optimizer.
        self.optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, fused=fused, **ADAM)
        self.optimizer_note = OPTIMIZER_NOTE.format(args.lr, ", fused=True" if fused else "")
        self.scheduler, self.schedule_steps = None, 0
        if args.lr_schedule == "onecycle":
            # PyTorch's OneCycleLR is the engine's onecycle (two phases, cosine, beta1
            # cycled), stepped after every training step; the engine holds the end values
            # past the schedule, where PyTorch would raise, so the stepping stops there.
            self.schedule_steps = (args.lr_schedule_epochs or args.epochs) * steps_per_epoch
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=args.lr, total_steps=self.schedule_steps,
                pct_start=args.lr_pct_start, div_factor=args.lr_div_factor,
                final_div_factor=args.lr_final_div_factor, anneal_strategy="cos",
                cycle_momentum=not args.lr_no_cycle_momentum, base_momentum=0.85,
                max_momentum=0.95, three_phase=False)
        train_fn, eval_fn = self._train_forward, self._eval_forward
        self.compile_notes = []
        if variant.startswith("compile-"):
            mode = variant[len("compile-"):]
            if mode == "max-autotune" and device.type == "cuda":
                # PyTorch 2.11's Triton convolution candidates with 8 warps can be
                # miscompiled for kernels larger than 1x1 (pytorch/pytorch#173068, fixed
                # after 2.11): autotuning picks among cuDNN's convolutions only, and
                # still autotunes the matrix products.
                inductor = getattr(getattr(torch, "_inductor", None), "config", None)
                if inductor is not None and hasattr(inductor, "max_autotune_conv_backends"):
                    inductor.max_autotune_conv_backends = "ATEN"
                    self.compile_notes.append("convolutions autotuned among cuDNN's only "
                                              "(pytorch/pytorch#173068)")
            # dynamic=False: one graph per shape. Only full batches take the compiled path
            # (see step and evaluate), so each function compiles once.
            train_fn = torch.compile(train_fn, mode=mode, dynamic=False)
            eval_fn = torch.compile(eval_fn, mode=mode, dynamic=False)
            self.cudagraphs = True  # both modes capture CUDA graphs
        self.train_compiled, self.eval_compiled = train_fn, eval_fn

    def _prepare(self, x):
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _train_forward(self, x, y):
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        correct = (logits.argmax(1) == y).sum()
        return loss, correct

    def _eval_forward(self, x, y):
        logits = self.model(x)
        loss = F.cross_entropy(logits, y, reduction="sum")
        correct = (logits.argmax(1) == y).sum()
        return loss, correct

    def _mark_step(self):
        # CUDA-graph trees reuse output memory; mark where one iteration begins.
        if self.cudagraphs and hasattr(torch, "compiler") and \
                hasattr(torch.compiler, "cudagraph_mark_step_begin"):
            torch.compiler.cudagraph_mark_step_begin()

    def step(self, x, y, totals):
        """One training step; the loss and hit counts stay on the device (no sync)."""
        x = self._prepare(x)
        full = x.shape[0] == self.batch_size
        # The last partial batch runs eagerly on the same parameters: the compiled
        # variants would otherwise compile (and autotune) a second graph for one step.
        fn = self.train_compiled if full else self._train_forward
        self._mark_step()
        loss, correct = fn(x, y)
        loss.backward()
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        if self.scheduler is not None and self.scheduler.last_epoch < self.schedule_steps - 1:
            self.scheduler.step()
        totals[0] += loss.detach() * x.shape[0]
        totals[1] += correct

    @torch.no_grad()
    def evaluate(self, images, labels):
        """(mean loss, accuracy) over a split, in batches of the training batch size."""
        self.model.eval()
        totals = torch.zeros(2, dtype=torch.float64, device=images.device)
        n = images.shape[0]
        for start in range(0, n, self.batch_size):
            x = self._prepare(images[start:start + self.batch_size])
            y = labels[start:start + self.batch_size]
            fn = self.eval_compiled if x.shape[0] == self.batch_size else self._eval_forward
            self._mark_step()
            loss, correct = fn(x, y)
            totals[0] += loss
            totals[1] += correct
        self.model.train()
        loss_sum, hits = totals.tolist()
        return loss_sum / max(n, 1), hits / max(n, 1)


def augment(x, args, gen):
    """The engine's augmentation (cnnk/augment.h) with PyTorch's random numbers: per
    sample a left-right flip with probability 1/2 and a shift by dy, dx uniform in
    [-s, s], the uncovered border zero. On the device, a few launches per batch."""
    if not args.augment_flip and not args.augment_shift:
        return x
    n, _, h, w = x.shape
    if args.augment_flip:
        flip = torch.rand(n, device=x.device, generator=gen) < 0.5
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(3), x)
    s = args.augment_shift
    if s:
        dy = torch.randint(-s, s + 1, (n, 1), device=x.device, generator=gen)
        dx = torch.randint(-s, s + 1, (n, 1), device=x.device, generator=gen)
        # y[i, j] = x[i - dy, j - dx], read from x padded by s zeros on every side.
        rows = torch.arange(h, device=x.device).view(1, h) - dy + s
        cols = torch.arange(w, device=x.device).view(1, w) - dx + s
        padded = F.pad(x, (s, s, s, s))
        batch = torch.arange(n, device=x.device).view(n, 1, 1)
        x = padded[batch, :, rows.view(n, h, 1), cols.view(n, 1, w)].permute(0, 3, 1, 2)
        x = x.contiguous()
    return x


def train(args, model_name, variant, precision, batch_size, data, device, target=None):
    """One training run; returns the row (and stops at the target accuracy if given)."""
    (train_x, train_y), (val_x, val_y), (test_x, test_y) = data
    flags = set_precision(precision)
    torch.manual_seed(args.seed)
    model = build_model(model_name).to(device)
    if variant == "channels-last":
        model = model.to(memory_format=torch.channels_last)
    n_train = train_x.shape[0]
    steps = math.ceil(n_train / batch_size)
    if variant.startswith("compile-"):
        clear_compile_counters()
    runner = Runner(model, variant, batch_size, device, args, steps)
    order_gen = torch.Generator(device=device)
    order_gen.manual_seed(args.seed)
    augment_gen = torch.Generator(device=device)
    augment_gen.manual_seed(args.seed + 1)

    epoch_seconds, train_seconds, history = [], [], []
    best_loss, best_epoch, best_state, waited = math.inf, 0, None, 0
    stopped_early, reached = False, None
    budget_cut = False
    for epoch in range(1, args.epochs + 1):
        sync(device)
        t0 = time.perf_counter()
        order = torch.randperm(n_train, device=device, generator=order_gen)
        totals = torch.zeros(2, dtype=torch.float64, device=device)  # loss sum, hits
        for b in range(steps):
            idx = order[b * batch_size:(b + 1) * batch_size]
            runner.step(augment(train_x[idx], args, augment_gen), train_y[idx], totals)
        sync(device)
        t_train = time.perf_counter()
        val_loss, val_acc = runner.evaluate(val_x, val_y) if val_x.shape[0] else (None, None)
        sync(device)
        t1 = time.perf_counter()
        epoch_seconds.append(t1 - t0)
        train_seconds.append(t_train - t0)
        loss_sum, hits = totals.tolist()
        log = {"epoch": epoch, "loss": loss_sum / n_train, "accuracy": hits / n_train,
               "val_loss": val_loss, "val_accuracy": val_acc, "seconds": t1 - t0,
               "train_seconds": t_train - t0}

        if target is not None:
            # Outside the epoch's time, inside the time to target.
            _, log["test_accuracy"] = runner.evaluate(test_x, test_y)
            if log["test_accuracy"] >= target:
                reached = {"seconds": time.perf_counter() - PROCESS_START, "epoch": epoch}
        history.append(log)
        shown = " ".join(f"{k} {v:.4f}" for k, v in log.items()
                         if k not in ("epoch", "train_seconds") and isinstance(v, float))
        print(f"{model_name} {VARIANTS[variant]} b{batch_size} {precision} epoch {epoch}: {shown}",
              file=sys.stderr, flush=True)
        if reached:
            break

        if args.patience >= 0 and val_loss is not None:
            # Keras's EarlyStopping(monitor="val_loss", min_delta=0, patience,
            # restore_best_weights=True), as the engine's default.
            if epoch == 1 or val_loss < best_loss:
                best_loss, best_epoch, waited = val_loss, epoch, 0
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
                if waited >= args.patience:
                    stopped_early = True
                    break
        if args.time_budget and epoch >= 2 and \
                time.perf_counter() - PROCESS_START > args.time_budget:
            budget_cut = epoch < args.epochs
            break

    if best_state is not None and not reached:
        model.load_state_dict(best_state)
    test_loss, test_acc = runner.evaluate(test_x, test_y)
    measured = epoch_seconds[1:] or epoch_seconds
    measured_train = train_seconds[1:] or train_seconds
    row = {
        "model": model_name, "engine": VARIANTS[variant], "batch_size": batch_size,
        "precision": precision,
        "seconds_per_epoch": sum(measured) / len(measured),
        "test_accuracy": test_acc,
        "epochs_run": len(history),
        "test_loss": test_loss,
        "train_seconds_per_epoch": sum(measured_train) / len(measured_train),
        "first_epoch_seconds": epoch_seconds[0],
        "seconds_per_epoch_excludes_first": len(epoch_seconds) > 1,
        "seconds_per_epoch_scope": "shuffle + training steps + validation pass "
                                   "(the engine's history seconds); first epoch apart",
        "epoch_seconds": epoch_seconds,
        "steps_per_epoch": steps, "train_samples": n_train,
        "validation_samples": val_x.shape[0], "test_samples": test_x.shape[0],
        "stopped_early": stopped_early, "best_epoch": best_epoch or None,
        "stopped_by_time_budget": budget_cut,
        "precision_flags": flags,
        "cudnn_benchmark": torch.backends.cudnn.benchmark,
        "channels_last": variant == "channels-last",
        "optimizer": runner.optimizer_note,
        "training": optimizer_recipe(args),
        "history": history,
    }
    if variant.startswith("compile-"):
        row["compile"] = {"mode": variant[len("compile-"):], "dynamic": False,
                          "note": "; ".join(["full batches compiled; the last partial batch "
                                             "eager"] + runner.compile_notes),
                          **compile_counters()}
    return row, reached


def clear_compile_counters():
    try:
        from torch._dynamo.utils import counters
        counters.clear()
    except ImportError:
        pass


# A row's first epoch holds its compilation, which --time-budget cannot cut short: a row
# starts only when the budget leaves it at least its variant's last first epoch, or
# these floors (seconds on a GPU) before any has run.
FIRST_EPOCH_FLOOR = {"compile-max-autotune": 240.0, "compile-reduce-overhead": 90.0}


def compile_counters():
    """What Dynamo and Inductor counted during the row (reset before it): the graphs
    compiled, recompilations, and the graphs that did not get CUDA graphs (a row then
    runs without them, whatever its mode promises)."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:
        return {}
    return {"graphs": int(counters["stats"].get("unique_graphs", 0)),
            "recompiles": int(sum(counters["recompiles"].values())),
            "cudagraph_skips": int(sum(counters["inductor"].get(k, 0)
                                       for k in counters["inductor"]
                                       if k.startswith("cudagraph_skips")))}


# ------------------------------------------------------------------------ the rows

def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=None,
                   help="folder of the IDX files (default: $CNN_DATA_DIR, data/fashion-mnist, "
                        "../shared/data/fashion-mnist)")
    p.add_argument("--models", default="fashion-cnn",
                   help="comma-separated zoo names (" + ", ".join(PARAMS) + ") or paths of "
                        "model descriptions (models/*.json)")
    p.add_argument("--batch-sizes", default="32,256")
    p.add_argument("--epochs", type=int, default=3,
                   help="epochs per row (the first is reported apart); the cap with "
                        "--patience or --target-accuracy")
    p.add_argument("--patience", type=int, default=-1,
                   help="early stopping on val_loss with this patience (-1: off)")
    p.add_argument("--validation-split", type=float, default=0.2)
    p.add_argument("--variants", default=",".join(VARIANTS),
                   help="comma-separated: " + ", ".join(VARIANTS))
    p.add_argument("--precisions", default="fp32,tf32", help="fp32 (strict IEEE), tf32")
    p.add_argument("--device", default="cuda", help="cuda, cuda:N, or cpu (a smoke test)")
    p.add_argument("--json", default=None, help="write the results here (after every row)")
    p.add_argument("--time-budget", type=float, default=0.0,
                   help="seconds from process start; later rows are skipped past it, and a "
                        "row stops after its second epoch (0: no budget)")
    p.add_argument("--limit", type=int, default=0, help="first N training images (0: all)")
    p.add_argument("--test-limit", type=int, default=0, help="first N test images (0: all)")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--lr", type=float, default=1e-3,
                   help="Adam's rate, the peak of onecycle (default: Keras's 1e-3)")
    p.add_argument("--lr-schedule", choices=("constant", "onecycle"), default="constant",
                   help="as `cnn train --lr-schedule` (onecycle: PyTorch's OneCycleLR)")
    p.add_argument("--lr-schedule-epochs", type=int, default=0,
                   help="onecycle: the schedule's length in epochs (0: --epochs)")
    p.add_argument("--lr-pct-start", type=float, default=0.3)
    p.add_argument("--lr-div-factor", type=float, default=25.0)
    p.add_argument("--lr-final-div-factor", type=float, default=1e4)
    p.add_argument("--lr-no-cycle-momentum", action="store_true",
                   help="onecycle: keep beta1 fixed (by default 0.95 -> 0.85 -> 0.95)")
    p.add_argument("--augment-flip", action="store_true",
                   help="flip training images left-right at random")
    p.add_argument("--augment-shift", type=int, default=0,
                   help="shift training images at random by up to N pixels (zero fill)")
    p.add_argument("--target-accuracy", type=float, default=None,
                   help="time-to-target mode: one run (the first model, variant, precision "
                        "and batch size) until the test accuracy reaches this")
    args = p.parse_args(argv)
    args.models = [m for m in args.models.split(",") if m]
    args.batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b]
    args.variants = [v for v in args.variants.split(",") if v]
    args.precisions = [x for x in args.precisions.split(",") if x]
    for m in args.models:
        if not os.path.exists(model_path(m)):
            p.error(f"unknown model {m!r}: no {model_path(m)} (zoo: {', '.join(PARAMS)})")
    for name, allowed, given in (("variant", VARIANTS, args.variants),
                                 ("precision", ("fp32", "tf32"), args.precisions)):
        bad = [g for g in given if g not in allowed]
        if bad:
            p.error(f"unknown {name} {bad[0]!r}: choose from {', '.join(allowed)}")
    if args.epochs < 1 or any(b < 1 for b in args.batch_sizes):
        p.error("--epochs and --batch-sizes must be positive")
    if args.lr <= 0 or args.augment_shift < 0 or args.lr_schedule_epochs < 0:
        p.error("--lr must be positive, --augment-shift and --lr-schedule-epochs not negative")
    return args


def find_data(arg):
    """The dataset folder, or a parent holding fashion-mnist/, searched as the engine does."""
    candidates = [arg] if arg else [os.environ.get("CNN_DATA_DIR", ""), "data/fashion-mnist",
                                    "../shared/data/fashion-mnist"]
    for d in filter(None, candidates):
        for folder in (d, os.path.join(d, "fashion-mnist")):
            if any(os.path.exists(os.path.join(folder, "train-images-idx3-ubyte" + ext))
                   for ext in (".gz", "")):
                return folder
    sys.exit(f"torch_bench: no IDX files in {', '.join(filter(None, candidates))}")


def environment(device):
    env = {"torch": torch.__version__, "python": platform.python_version(),
           "device": str(device), "import_torch_seconds": IMPORT_TORCH_SECONDS}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version()
    return env


def recipe(args, model, variant, precision, batch_size):
    stop = (f"early stopping on val_loss patience {args.patience} (best weights restored)"
            if args.patience >= 0 else "no early stopping")
    return (f"{model}, {VARIANTS[variant]}, {precision}, {optimizer_recipe(args)}, "
            f"batch {batch_size}, validation split {args.validation_split} (last part), "
            f"shuffle each epoch, {stop}, at most {args.epochs} epochs, seed {args.seed}, "
            f"test accuracy after every epoch; seconds from process start (before "
            f"importing torch) to the end of that epoch's test evaluation")


def optimizer_recipe(args):
    """The optimizer, schedule and augmentation in words, as gpu_check.sh words ours."""
    text = ("Adam lr 1e-3 (Keras defaults)" if args.lr == 1e-3 and args.lr_schedule == "constant"
            else f"Adam lr {args.lr:g}")
    if args.lr_schedule == "onecycle":
        text += (f" onecycle over {args.lr_schedule_epochs or args.epochs} epochs "
                 f"(pct_start {args.lr_pct_start:g}, div {args.lr_div_factor:g}, final div "
                 f"{args.lr_final_div_factor:g}"
                 f"{', beta1 fixed' if args.lr_no_cycle_momentum else ', beta1 0.95-0.85-0.95'})")
    if args.augment_flip:
        text += ", random flips"
    if args.augment_shift:
        text += f", random shifts up to {args.augment_shift} px"
    return text


def write_json(path, result):
    """Writes the result where --json asked (nowhere without it), atomically: a run killed
    by a timeout still leaves the last complete file."""
    if path:
        write_json_atomic(path, result)


def compile_failure(e):
    """One line for a failed variant: the exception's type and first line."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {first}"[:500]


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("torch_bench: no CUDA device is available (use --device cpu for a smoke test)")
    torch.backends.cudnn.benchmark = True  # every variant: the fastest cuDNN algorithms
    data_dir = find_data(args.data)
    train_all = load_split(data_dir, "train", args.limit, device)
    test = load_split(data_dir, "t10k", args.test_limit, device)
    splits = (*split_validation(*train_all, args.validation_split), test)

    result = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              **environment(device), "data": data_dir, "command": sys.argv,
              "rows": [], "skipped": [], "time_to_92": []}

    if args.target_accuracy is not None:
        combo = (args.models[0], args.variants[0], args.precisions[0], args.batch_sizes[0])
        entry = {"engine": VARIANTS[combo[1]], "target": args.target_accuracy,
                 "recipe": recipe(args, *combo), "import_torch_seconds": IMPORT_TORCH_SECONDS}
        try:
            row, reached = train(args, *combo, splits, device, target=args.target_accuracy)
            entry.update(seconds=reached["seconds"] if reached else None,
                         epoch=reached["epoch"] if reached else None,
                         precision=combo[2], batch_size=combo[3],
                         best_test_accuracy=max(h["test_accuracy"] for h in row["history"]))
            result["rows"].append(row)
        except Exception as e:  # noqa: BLE001 - a failed variant is a result, not a crash
            entry.update(seconds=None, error=compile_failure(e))
        result["time_to_92"].append(entry)
        write_json(args.json, result)
        print(json.dumps(entry, indent=2))
        return 0

    # A stage limit's SIGTERM (gpu_check.sh runs this under `timeout`) records the row in
    # progress as skipped, so that the JSON says where the time went.
    in_progress = {}

    def on_term(signum, frame):  # noqa: ARG001 - the signal handler's signature
        if in_progress:
            result["skipped"].append({**in_progress, "reason": "killed by the caller's time "
                                      "limit (SIGTERM) while the row ran"})
        write_json(args.json, result)
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, on_term)
    first_epoch = {}  # variant -> the last row's first-epoch seconds
    for precision in args.precisions:
        for variant in args.variants:
            for model_name in args.models:
                for batch_size in args.batch_sizes:
                    key = {"model": model_name, "engine": VARIANTS[variant],
                           "batch_size": batch_size, "precision": precision}
                    elapsed = time.perf_counter() - PROCESS_START
                    need = first_epoch.get(variant, FIRST_EPOCH_FLOOR.get(variant, 0.0)
                                           if device.type == "cuda" else 0.0)
                    if args.time_budget and elapsed + need > args.time_budget:
                        result["skipped"].append({**key, "reason": f"time budget "
                                                  f"{args.time_budget:.0f} s: {elapsed:.0f} s "
                                                  f"spent, a first epoch of this variant "
                                                  f"takes about {need:.0f} s"})
                        continue
                    in_progress.clear()
                    in_progress.update(key)
                    try:
                        row, _ = train(args, model_name, variant, precision, batch_size,
                                       splits, device)
                        first_epoch[variant] = row["first_epoch_seconds"]
                        result["rows"].append(row)
                        print(f"{model_name} {VARIANTS[variant]} b{batch_size} {precision}: "
                              f"{row['seconds_per_epoch']:.3f} s/epoch (first "
                              f"{row['first_epoch_seconds']:.1f} s), test accuracy "
                              f"{row['test_accuracy']:.4f}", flush=True)
                    except Exception as e:  # noqa: BLE001 - recorded as a skipped row
                        result["skipped"].append({**key, "reason": compile_failure(e)})
                        print(f"{model_name} {VARIANTS[variant]} b{batch_size} {precision}: "
                              f"skipped: {compile_failure(e)}", flush=True)
                    finally:
                        in_progress.clear()
                        if variant.startswith("compile-") and hasattr(torch, "_dynamo"):
                            try:
                                torch._dynamo.reset()  # the next row compiles afresh
                            except Exception as e:  # noqa: BLE001 - the next rows still run
                                print(f"torch._dynamo.reset failed: {compile_failure(e)}",
                                      file=sys.stderr, flush=True)
                    write_json(args.json, result)
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
