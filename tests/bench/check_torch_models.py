#!/usr/bin/env python3
"""bench/torch_models.py builds the model the engine builds: the same weights give the
same probabilities.

For each model, `cnn train` trains a few steps on a small synthetic dataset and saves
its weights; `cnn predict --csv` writes the engine's probabilities for the test images;
the PyTorch build of the same description loads those weights and must agree to 1e-5
(log-probabilities).
Asymmetric "same" padding (stride 2), pooling with "same", batch norm after a conv and
after a dense layer, residual adds and concatenation are all covered by the zoo.

Exit status 77 (CTest's skip) where torch cannot be imported, as on CI machines.
Usage: check_torch_models.py --cnn PATH/TO/cnn [--models a,b]
"""
import argparse
import csv
import os
import random
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))

try:
    import torch
except ImportError as e:
    print(f"SKIP: torch cannot be imported ({e})")
    sys.exit(77)
import torch_models  # noqa: E402

MODELS = ",".join(torch_models.PARAMS)  # the seed models and the zoo
TOLERANCE = 1e-5  # float32 forwards of different order agree to ~1e-7 here


def write_idx(path, dims, payload):
    header = bytes([0, 0, 0x08, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)
    with open(path, "wb") as f:
        f.write(header + bytes(payload))


def synthetic_split(folder, prefix, n, rng):
    """n 28x28 pictures of bright rectangles on noise, with labels 0..9."""
    pixels = []
    for _ in range(n):
        img = [rng.randrange(0, 40) for _ in range(784)]
        y0, x0 = rng.randrange(0, 14), rng.randrange(0, 14)
        h, w, v = rng.randrange(6, 14), rng.randrange(6, 14), rng.randrange(120, 256)
        for y in range(y0, y0 + h):
            for x in range(x0, x0 + w):
                img[y * 28 + x] = v
        pixels += img
    write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"), (n, 28, 28), pixels)
    write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"), (n,),
              [rng.randrange(10) for _ in range(n)])
    return pixels


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}{r.stderr}")


def check(cnn, name, work, test_pixels, n_test):
    weights = os.path.join(work, f"{name}.safetensors")
    probs_csv = os.path.join(work, f"{name}.csv")
    run([cnn, "train", "--model", name, "--device", "cpu", "--data", work, "--epochs", "1",
         "--batch-size", "32", "--seed", "7", "--quiet", "--save", weights])
    run([cnn, "predict", "--model", name, "--weights", weights, "--device", "cpu",
         os.path.join(work, "t10k-images-idx3-ubyte"), "--csv", probs_csv])
    with open(probs_csv) as f:
        rows = list(csv.reader(f))[1:]
    ours = torch.tensor([[float(v) for v in r[1:]] for r in rows], dtype=torch.float64)

    model = torch_models.build_model(name)
    tensors = torch_models.read_safetensors(weights)
    used = torch_models.load_engine_weights(model, tensors)
    if len(used) != len(tensors):
        raise AssertionError(f"{name}: {len(tensors) - len(used)} tensors left unused")
    model.eval()
    x = torch.tensor(test_pixels, dtype=torch.float64).reshape(n_test, 1, 28, 28) / 255.0
    with torch.no_grad():
        theirs = torch.softmax(model(x.float()).double(), dim=1)
    # Log-probabilities: a briefly trained net's probabilities sit near 1/10, where a
    # difference of logits shows a tenth of its size; logs show it whole.
    worst = (ours.log() - theirs.log()).abs().max().item()
    print(f"{name}: {len(used)} tensors, {n_test} images, "
          f"max |log p_engine - log p_torch| = {worst:.2e}")
    return worst <= TOLERANCE


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--cnn", required=True, help="the cnn binary")
    p.add_argument("--models", default=MODELS)
    args = p.parse_args()
    rng = random.Random(1234)
    failed = []
    with tempfile.TemporaryDirectory() as work:
        synthetic_split(work, "train", 96, rng)
        n_test = 24
        test_pixels = synthetic_split(work, "t10k", n_test, rng)
        for name in filter(None, args.models.split(",")):
            if not check(args.cnn, name, work, test_pixels, n_test):
                failed.append(name)
    if failed:
        print(f"FAILED: {', '.join(failed)} differ past {TOLERANCE}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
