"""Unit tests of bench/bench_report.py's merging, on fake inputs (python3 -m unittest)."""
import datetime
import json
import math
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import bench_report  # noqa: E402

NOW = datetime.datetime(2026, 11, 21, 12, 0, 0, tzinfo=datetime.timezone.utc)


def train_report(batch_size, seconds, accuracy=0.91):
    """A `cnn train --report` file as the engine writes it (the keys the merge reads)."""
    return {"model": "fashion-cnn", "batch_size": batch_size, "test_accuracy": accuracy,
            "epochs_run": len(seconds), "train_images": 60000, "validation_split": 0.2,
            "implementations": {"conv2d": "native"},
            "history": [{"epoch": i + 1, "seconds": s} for i, s in enumerate(seconds)]}


def torch_file(rows, skipped=(), time_to_92=()):
    return {"torch": "2.11.0+cu128", "cudnn": 91002, "rows": list(rows),
            "skipped": list(skipped), "time_to_92": list(time_to_92)}


def torch_row(engine, batch_size, precision, seconds):
    return {"model": "fashion-cnn", "engine": engine, "batch_size": batch_size,
            "precision": precision, "seconds_per_epoch": seconds, "test_accuracy": 0.9,
            "epochs_run": 3, "first_epoch_seconds": 10.0, "history": []}


def layer(name, pass_, batch_size, native, cudnn, gflop):
    return {"model": "fashion-cnn", "layer": name, "pass": pass_, "batch_size": batch_size,
            "native_ms": native, "cudnn_ms": cudnn, "gflop": gflop, "gbytes": 0.1,
            "type": "Conv2D" if name.startswith("conv") else "Dense", "extra": "dropped"}


def zoo_layer(model, name, pass_, batch_size, native, cudnn, type_="BatchNormalization"):
    return {"model": model, "layer": name, "pass": pass_, "batch_size": batch_size,
            "native_ms": native, "cudnn_ms": cudnn, "gflop": 0.0, "gbytes": 0.1,
            "type": type_}


class MergeTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.work = os.path.join(self.tmp.name, "work")
        self.carry = os.path.join(self.tmp.name, "carry")
        os.makedirs(self.work)
        os.makedirs(self.carry)
        self.write(self.carry, "commit", "abc123\n")
        self.write(self.carry, "kernels_tree", "def456\n")
        self.write(self.work, "gpu.txt", "NVIDIA H200, 570.86\n")

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, folder, name, content):
        with open(os.path.join(folder, name), "w") as f:
            f.write(content if isinstance(content, str) else json.dumps(content))

    def build(self, log="-- cuDNN 9.10.2: /usr/lib/libcudnn.so"):
        return bench_report.build_report(self.carry, self.work, log, 67.0, now=NOW, cuda="12.8")

    def full_inputs(self):
        # First epochs are slow (warm-up) and must not count.
        self.write(self.work, "ours-fp32-b32.json", train_report(32, [9.0, 4.0, 4.0]))
        self.write(self.work, "ours-fp32-b256.json", train_report(256, [5.0, 1.0, 1.0]))
        self.write(self.work, "ours-tf32-b256.json", train_report(256, [5.0, 0.5, 0.5]))
        self.write(self.work, "ours-ttt.json", {
            "model": "fashion-cnn", "history": [],
            "time_to_target": {"target": 0.92, "seconds_from_process_start": 42.5, "epoch": 7}})
        self.write(self.work, "ours-ttt.recipe", "fashion-cnn, batch 32")
        self.write(self.work, "torch.json", torch_file(
            [torch_row("torch-eager", 32, "fp32", 2.0),
             torch_row("torch-compile-reduce-overhead", 32, "fp32", 1.0),
             torch_row("torch-eager", 256, "fp32", 0.8),
             torch_row("torch-eager", 256, "tf32", 0.25)],
            skipped=[{"engine": "torch-compile-max-autotune", "reason": "time budget"}]))
        self.write(self.work, "torch-ttt.json", torch_file(
            [torch_row("torch-eager", 32, "fp32", 99.0)],  # the target run: not a timing row
            time_to_92=[{"engine": "torch-eager", "seconds": 30.0, "recipe": "r"}]))
        self.write(self.work, "layers.json", {"layers": [
            layer("conv2d_1", "forward", 256, 2.0, 1.0, 100.0),
            layer("conv2d_1", "backward_data", 256, 4.0, 4.0, 100.0),
            layer("conv2d_1", "backward_filter", 256, 8.0, 16.0, 100.0),
            layer("dense", "forward", 256, 1.0, 1.0, 10.0),
            layer("conv2d_1", "forward", 32, 50.0, 1.0, 12.5)]})
        self.write(self.work, "layers-tiles128.json", {"layers": [
            layer("conv2d_1", "forward", 256, 1.0, 1.0, 100.0),
            layer("conv2d_1", "backward_data", 256, 8.0, 4.0, 100.0),
            layer("conv2d_1", "backward_filter", 256, 8.0, 16.0, 100.0)]})
        self.write(self.work, "layers-zoo-resnet-small.json", {"rows": [
            zoo_layer("resnet-small", "stem_bn", "forward-training", 256, 1.0, 2.0),
            zoo_layer("resnet-small", "stem_bn", "backward", 256, 4.0, 2.0),
            zoo_layer("resnet-small", "stem_bn", "forward-training", 32, 3.0, 1.0),
            zoo_layer("resnet-small", "stem_conv", "forward", 256, 9.0, 1.0, "Conv2D")]})
        self.write(self.work, "layers-zoo-vgg-small.json", {"rows": [
            zoo_layer("vgg-small", "batch_normalization", "backward", 256, 1.0, 8.0)]})
        self.write(self.work, "layers-tf32.json", {"layers": [
            layer("conv2d_1", "forward", 256, 1.0, 0.25, 100.0),
            layer("conv2d_1", "backward_data", 256, 2.0, 0.5, 100.0)]})
        self.write(self.work, "layers-tf32-tiles128.json", {"layers": [
            layer("conv2d_1", "forward", 256, 0.5, 0.25, 100.0),
            layer("conv2d_1", "backward_data", 256, 0.5, 0.5, 100.0)]})

    def test_keys_and_environment(self):
        self.full_inputs()
        r = self.build()
        for key in ("commit", "kernels_tree", "date", "gpu", "driver", "cuda", "cudnn", "torch",
                    "epochs", "layers", "peak_fraction_b256", "time_to_92", "ratios"):
            self.assertIn(key, r)
        self.assertEqual(r["commit"], "abc123")
        self.assertEqual(r["kernels_tree"], "def456")
        self.assertEqual(r["date"], "2026-11-21T12:00:00+00:00")
        self.assertEqual((r["gpu"], r["driver"]), ("NVIDIA H200", "570.86"))
        self.assertEqual((r["cuda"], r["cudnn"], r["torch"]), ("12.8", "9.10.2", "2.11.0+cu128"))
        self.assertEqual(r["peak_fp32_tflops"], 67.0)
        self.assertEqual(r["missing"], ["ours-tf32-b32.json"])

    def test_peak_from_the_gpu_name(self):
        self.full_inputs()
        for name, tflops in (("NVIDIA H200", 67.0), ("NVIDIA H100 80GB HBM3", 67.0),
                             ("NVIDIA H100 PCIe", 51.0), ("NVIDIA H100 NVL", 60.0)):
            self.write(self.work, "gpu.txt", f"{name}, 580.1")
            r = bench_report.build_report(self.carry, self.work, "", now=NOW, cuda="13.0")
            self.assertEqual(r["peak_fp32_tflops"], tflops, name)
            self.assertTrue(r["peak_fp32_source"].startswith("datasheet"), name)
            self.assertAlmostEqual(r["peak_fraction_b256"] * tflops,
                                   r["peak_fraction_basis"]["achieved_tflops"])
        self.write(self.work, "gpu.txt", "Some Future GPU, 600.0")
        r = bench_report.build_report(self.carry, self.work, "", now=NOW, cuda="13.0")
        self.assertEqual(r["peak_fp32_tflops"], bench_report.DEFAULT_PEAK_TFLOPS)
        self.assertIn("Some Future GPU", r["peak_fp32_source"])

    def test_epoch_rows(self):
        self.full_inputs()
        epochs = self.build()["epochs"]
        ours = [e for e in epochs if e["engine"] == "ours"]
        self.assertEqual(len(ours), 3)
        b32 = next(e for e in ours if e["batch_size"] == 32)
        self.assertAlmostEqual(b32["seconds_per_epoch"], 4.0)  # first epoch left out
        self.assertEqual(b32["first_epoch_seconds"], 9.0)
        self.assertNotIn("step_graph_nodes", b32)
        # The captured step's node counts ride along when the report has them.
        rep = train_report(32, [9.0, 4.0])
        rep["cuda_graphs"] = {"enabled": True, "nodes": {"kernels": 70, "copies": 0, "total": 70}}
        self.write(self.work, "ours-fp32-b32.json", rep)
        b32 = next(e for e in self.build()["epochs"]
                   if e["engine"] == "ours" and e["batch_size"] == 32)
        self.assertEqual(b32["step_graph_nodes"]["kernels"], 70)
        for e in epochs:
            for key in bench_report.EPOCH_KEYS:
                self.assertIn(key, e)
        # The time-to-target run of torch is not a timing row.
        self.assertNotIn(99.0, [e["seconds_per_epoch"] for e in epochs])
        self.assertEqual(len(epochs), 3 + 4)

    def test_impl_auto_rows_are_ours_auto_and_not_torch(self):
        self.full_inputs()
        self.write(self.work, "ours-auto-fp32-b256.json", train_report(256, [6.0, 0.4, 0.4]))
        self.write(self.work, "ours-auto-tf32-b256.json", "{ damaged")
        r = self.build()
        auto = [e for e in r["epochs"] if e["engine"] == "ours-auto"]
        self.assertEqual([(e["batch_size"], e["precision"]) for e in auto], [(256, "fp32")])
        self.assertAlmostEqual(auto[0]["seconds_per_epoch"], 0.4)
        self.assertIn("ours-auto-tf32-b256.json", r["missing"])
        # The best torch row stays torch's (0.8), though ours-auto is faster.
        self.assertEqual(r["ratios"]["best_torch_b256_fp32"], "torch-eager")
        self.assertAlmostEqual(r["ratios"]["ours_auto_over_best_torch_b256_fp32"], 0.5)
        self.assertIsNone(r["ratios"]["ours_auto_over_best_torch_b256_tf32"])
        # Not run at all is not missing: those stages come when the bench has time.
        os.remove(os.path.join(self.work, "ours-auto-tf32-b256.json"))
        self.assertEqual([m for m in self.build()["missing"] if "auto" in m], [])

    def test_layers_keep_the_documented_keys(self):
        self.full_inputs()
        layers = self.build()["layers"]
        self.assertEqual(len(layers), 5)
        self.assertEqual(set(layers[0]), set(bench_report.LAYER_KEYS) | {"type"})
        # cnn bench's own form: the rows under "rows", nulls where a key is missing.
        self.write(self.work, "layers.json", {"rows": [{"layer": "conv2d", "pass": "forward"}]})
        layers = self.build()["layers"]
        self.assertEqual(layers[0]["layer"], "conv2d")
        self.assertIsNone(layers[0]["cudnn_ms"])

    def test_ratios(self):
        self.full_inputs()
        ratios = self.build()["ratios"]
        self.assertAlmostEqual(ratios["ours_over_torch_eager_b32_fp32"], 2.0)
        self.assertAlmostEqual(ratios["ours_over_best_torch_b32_fp32"], 4.0)
        self.assertEqual(ratios["best_torch_b32_fp32"], "torch-compile-reduce-overhead")
        self.assertAlmostEqual(ratios["ours_over_best_torch_b256_fp32"], 1.0 / 0.8)
        self.assertAlmostEqual(ratios["ours_over_best_torch_b256_tf32"], 2.0)
        # Conv rows at batch 256 only: 2, 1 and 0.5 have a geometric mean of 1.
        self.assertAlmostEqual(ratios["conv_native_over_cudnn_geomean_b256"], 1.0)
        # 128x128 tiles against 64x64, the rows in both: 1/2, 8/4 and 8/8 give 1; a 128x128
        # row that has no 64x64 partner would not count.
        self.assertAlmostEqual(ratios["conv_tiles_128_over_64_geomean_b256"], 1.0)
        self.write(self.work, "layers-tiles128.json", {"layers": [
            layer("conv2d_1", "forward", 256, 1.0, 1.0, 100.0),
            layer("conv2d_9", "forward", 256, 100.0, 1.0, 100.0)]})
        r = self.build()
        self.assertAlmostEqual(r["ratios"]["conv_tiles_128_over_64_geomean_b256"], 0.5)
        self.assertEqual(len(r["layers_conv_tiles_128"]), 2)
        # TF32: native over cuDNN 4 and 4; 128x128 over 64x64 tiles 1/2 and 1/4.
        self.assertAlmostEqual(ratios["conv_tf32_native_over_cudnn_geomean_b256"], 4.0)
        self.assertAlmostEqual(ratios["conv_tf32_tiles_128_over_64_geomean_b256"],
                               math.sqrt(0.5 * 0.25))
        self.assertEqual((len(r["layers_tf32"]), len(r["layers_tf32_tiles_128"])), (2, 2))

    def test_zoo_batchnorm_rows_and_ratio(self):
        self.full_inputs()
        r = self.build()
        self.assertEqual(len(r["layers_zoo"]), 5)
        self.assertEqual({row["model"] for row in r["layers_zoo"]}, {"resnet-small", "vgg-small"})
        # Batch-norm rows at 256 only, every model (the conv row does not count): 1/2, 2
        # and 1/8 have a geometric mean of 1/2; at 32 the one row, 3.
        self.assertAlmostEqual(r["ratios"]["batchnorm_native_over_cudnn_geomean_b256"], 0.5)
        self.assertAlmostEqual(r["ratios"]["batchnorm_native_over_cudnn_geomean_b32"], 3.0)
        # The zoo's rows do not enter the fashion-cnn conv figure.
        self.assertAlmostEqual(r["ratios"]["conv_native_over_cudnn_geomean_b256"], 1.0)
        # A zoo file with no rows is missing; the others still count.
        self.write(self.work, "layers-zoo-vgg-small.json", {"rows": []})
        r = self.build()
        self.assertIn("layers-zoo-vgg-small.json", r["missing"])
        self.assertAlmostEqual(r["ratios"]["batchnorm_native_over_cudnn_geomean_b256"], 1.0)

    def test_peak_fraction_from_the_train_report(self):
        # No epoch in layers.json: cnn train's b256 epochs (1 s each after the first), whose
        # 12,000 validation images count their forward pass.
        self.full_inputs()
        r = self.build()
        basis = r["peak_fraction_basis"]
        self.assertTrue(basis["time_source"].startswith("cnn train"))
        train, forward = bench_report.formula_flops_per_sample()
        # fashion-cnn's multiply-adds per image, by hand: the convolutions 784*64*49,
        # 196*128*576, 196*128*1152, 49*256*1152, 49*256*2304, the Dense layers 2304*128,
        # 128*64, 64*10: 89,466,496 in all. Forward 2 FLOPs each; backward 4 each (input
        # and weight gradients) but 2 for the first convolution, which has no input
        # gradient to compute.
        macs = 784 * 64 * 49 + 196 * 128 * 576 + 196 * 128 * 1152 + 49 * 256 * 1152 \
            + 49 * 256 * 2304 + 2304 * 128 + 128 * 64 + 64 * 10
        self.assertEqual(macs, 89_466_496)
        self.assertEqual(forward, 2 * macs)
        self.assertEqual(train, 2 * macs + 4 * macs - 2 * (784 * 64 * 49))
        self.assertEqual(train, 531_881_728)
        self.assertAlmostEqual(r["peak_fraction_b256"],
                               (48000 * train + 12000 * forward) / 1.0 / 67e12)
        self.assertEqual(basis["peak_fp32_tflops"], 67.0)
        # The cross-check: every b256 row's gflop (310) per image.
        self.assertAlmostEqual(basis["layer_rows_gflop_per_sample"], 310 / 256)

    def test_peak_fraction_from_the_bench_epoch(self):
        # cnn bench's epoch at batch 256 (training only) wins over cnn train's.
        self.full_inputs()
        self.write(self.work, "layers.json", {
            "rows": [layer("conv2d", "forward", 256, 1.0, 1.0, 5.0)],
            "epoch": {"samples": 60000, "batch_size": 256, "seconds_per_epoch": 2.0}})
        r = self.build()
        self.assertTrue(r["peak_fraction_basis"]["time_source"].startswith("cnn bench"))
        train, _ = bench_report.formula_flops_per_sample()
        self.assertAlmostEqual(r["peak_fraction_b256"], 60000 * train / 2.0 / 67e12)

    def test_a_bench_epoch_at_another_batch_size_is_not_used(self):
        self.full_inputs()
        self.write(self.work, "layers.json", {
            "rows": [], "epoch": {"samples": 60000, "batch_size": 32, "seconds_per_epoch": 9.0}})
        basis = self.build()["peak_fraction_basis"]
        self.assertTrue(basis["time_source"].startswith("cnn train"))

    def test_time_to_92(self):
        self.full_inputs()
        entries = self.build()["time_to_92"]
        self.assertEqual([(e["engine"], e["seconds"]) for e in entries],
                         [("ours", 42.5), ("torch-eager", 30.0)])
        self.assertEqual(entries[0]["recipe"], "fashion-cnn, batch 32")
        self.assertEqual(entries[0]["epoch"], 7)

    def test_time_to_92_of_each_recipe(self):
        # A second recipe reached the target; a third one's run left no report.
        self.full_inputs()
        self.write(self.work, "ours-ttt-fast.json", {
            "model": "vgg-small", "history": [],
            "time_to_target": {"target": 0.92, "seconds_from_process_start": 6.5, "epoch": 4}})
        self.write(self.work, "ours-ttt-fast.recipe", "vgg-small, onecycle")
        self.write(self.work, "ours-ttt-lost.recipe", "resnet-small")
        r = self.build()
        ours = [(e["recipe"], e["seconds"], e["epoch"]) for e in r["time_to_92"]
                if e["engine"] == "ours"]
        self.assertEqual(sorted(ours), [("fashion-cnn, batch 32", 42.5, 7),
                                        ("vgg-small, onecycle", 6.5, 4)])
        self.assertIn("ours-ttt-lost.json (time_to_target)", r["missing"])
        self.assertNotIn("ours-ttt-fast.json (time_to_target)", r["missing"])
        # Each recipe's ratio pairs ours with PyTorch's run of the same recipe.
        self.assertAlmostEqual(r["ratios"]["time_to_92_ours_over_torch_eager_seed"], 42.5 / 30.0)
        self.assertIsNone(r["ratios"]["time_to_92_ours_over_torch_eager_fast"])  # no torch run
        self.write(self.work, "torch-ttt-fast.json", torch_file(
            [], time_to_92=[{"engine": "torch-eager", "seconds": 13.0, "recipe": "r2"}]))
        r = self.build()
        self.assertAlmostEqual(r["ratios"]["time_to_92_ours_over_torch_eager_fast"], 6.5 / 13.0)
        self.assertEqual({(e["engine"], e["recipe_id"]) for e in r["time_to_92"]},
                         {("ours", "seed"), ("ours", "fast"), ("torch-eager", "seed"),
                          ("torch-eager", "fast")})

    def test_nothing_there(self):
        # Every stage failed: still a report, with nulls and what is missing.
        r = self.build(log="")
        self.assertEqual(r["epochs"], [])
        self.assertIsNone(r["peak_fraction_b256"])
        self.assertIsNone(r["ratios"]["ours_over_torch_eager_b32_fp32"])
        self.assertIsNone(r["ratios"]["conv_native_over_cudnn_geomean_b256"])
        self.assertIsNone(r["ratios"]["conv_tiles_128_over_64_geomean_b256"])
        self.assertIsNone(r["ratios"]["conv_tf32_tiles_128_over_64_geomean_b256"])
        self.assertIsNone(r["ratios"]["batchnorm_native_over_cudnn_geomean_b256"])
        for name in ("layers-tiles128.json", "layers-tf32.json", "layers-tf32-tiles128.json",
                     "layers-zoo-*.json"):
            self.assertIn(name, r["missing"])
        self.assertEqual(r["cudnn"], "")
        self.assertIn("torch*.json", r["missing"])

    def test_damaged_inputs_are_missing_not_fatal(self):
        self.write(self.work, "ours-fp32-b32.json", "{not json")
        self.write(self.work, "layers.json", {"layers": "nope"})
        self.write(self.work, "torch.json", "[1, 2")
        self.write(self.work, "ours-fp32-b256.json", train_report(256, [float("nan")]))
        r = self.build()
        self.assertIn("ours-fp32-b32.json", r["missing"])
        self.assertIn("torch.json", r["missing"])
        self.assertEqual(r["layers"], [])
        self.assertIsNone(r["epochs"][0]["seconds_per_epoch"])
        json.dumps(r, allow_nan=False)  # strict JSON: no NaN slipped through

    def test_stages(self):
        self.write(self.work, "stages.txt",
                   "ours-fp32-b32 ok 31\ntorch-compile skipped 0\nlayers failed-124 40\nbad\n")
        self.assertEqual(self.build()["stages"], [
            {"stage": "ours-fp32-b32", "status": "ok", "seconds": 31.0},
            {"stage": "torch-compile", "status": "skipped", "seconds": 0.0},
            {"stage": "layers", "status": "failed-124", "seconds": 40.0}])

    def test_cudnn_version_from_torch(self):
        self.assertEqual(bench_report.cudnn_from_torch(91002), "9.10.2")
        self.assertEqual(bench_report.cudnn_from_torch(8905), "8.9.5")
        self.assertEqual(bench_report.cudnn_from_torch(None), "")
        self.full_inputs()
        self.assertEqual(self.build(log="")["cudnn"], "9.10.2")

    def test_main_writes_the_file(self):
        self.full_inputs()
        out = os.path.join(self.tmp.name, "bench.json")
        devnull = open(os.devnull, "w")
        stdout, sys.stdout = sys.stdout, devnull
        try:
            bench_report.main(["--carry", self.carry, "--work", self.work, "--out", out])
        finally:
            sys.stdout = stdout
            devnull.close()
        with open(out) as f:
            r = json.load(f)
        self.assertTrue(math.isfinite(r["peak_fraction_b256"]))
        self.assertFalse(os.path.exists(out + ".tmp"))


if __name__ == "__main__":
    unittest.main()
