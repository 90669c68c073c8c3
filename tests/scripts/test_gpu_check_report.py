"""Unit tests of scripts/gpu_check_report.py on fake inputs (python3 -m unittest)."""
import datetime
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import gpu_check_report  # noqa: E402

NOW = datetime.datetime(2026, 11, 21, 12, 0, 0, tzinfo=datetime.timezone.utc)

# ctest's lines as it prints them with -j (finish order, not test order).
CTEST_LOG = """\
-- cuDNN 9.13.0: /opt/cudnn/lib/libcudnn.so.9
Test project /tmp/build-gpu
    Start 571: CudaGraphs.ReplayedStepsEqualLaunchedStepsBitForBit
1/5 Test #571: CudaGraphs.ReplayedStepsEqualLaunchedStepsBitForBit .............   Passed    0.65 sec
2/5 Test #180: StepScalars.CudaGraphsChangeNothingOnTheCpu .....................   Passed    0.67 sec
3/5 Test #572: Conv2dSweep.Forward .............................................***Failed    1.08 sec
4/5 Test  #12: Sim.Thing .......................................................***Skipped   0.08 sec
5/5 Test #573: CudaBackend.Hangs ...............................................***Timeout 240.01 sec
"""


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def train_report(impl_accuracy, seconds):
    return {"model": "fashion-cnn", "batch_size": 32, "epochs_run": len(seconds),
            "epochs_requested": 20, "test_accuracy": impl_accuracy,
            "history": [{"epoch": i + 1, "seconds": s} for i, s in enumerate(seconds)]}


class CudnnVersion(unittest.TestCase):
    def test_the_loaded_library_before_the_configured_headers(self):
        log = "-- cuDNN 9.13.0: /opt/libcudnn.so.9\nloaded: cuDNN 9.26.0 (built with 9.13.0)\n"
        self.assertEqual(gpu_check_report.cudnn_version(log), "9.26.0")
        self.assertEqual(gpu_check_report.cudnn_version(CTEST_LOG), "9.13.0")
        self.assertEqual(gpu_check_report.cudnn_version("no such line"), "")


class ParseCtest(unittest.TestCase):
    def test_counts_each_finished_test_by_its_status(self):
        tests = gpu_check_report.parse_ctest(CTEST_LOG)
        self.assertEqual(tests["passed"], 2)
        self.assertEqual(tests["skipped"], 1)
        self.assertEqual(tests["failed"], 2)  # a timeout is a failure
        self.assertEqual(tests["failed_names"], ["Conv2dSweep.Forward", "CudaBackend.Hangs"])
        self.assertTrue(tests["complete"])

    def test_a_run_cut_short_counts_what_finished_and_says_so(self):
        cut = "\n".join(CTEST_LOG.splitlines()[:6])  # through test 3 of 5
        tests = gpu_check_report.parse_ctest(cut)
        self.assertEqual((tests["passed"], tests["failed"], tests["total"]), (2, 1, 5))
        self.assertFalse(tests["complete"])

    def test_two_runs_in_one_log_add_up(self):
        # The GPU suites, then the CPU ones: the second run's totals join the first's.
        second = """\
1/3 Test  #40: Ops.One .........................................................   Passed    0.05 sec
2/3 Test  #41: Ops.Two .........................................................***Failed    0.05 sec
"""
        tests = gpu_check_report.parse_ctest(CTEST_LOG + second)
        self.assertEqual((tests["passed"], tests["failed"], tests["skipped"], tests["total"]),
                         (3, 3, 1, 8))
        self.assertFalse(tests["complete"])  # the second run was cut after 2 of its 3
        same_size = CTEST_LOG + CTEST_LOG.replace("Test #", "Test #9")
        self.assertEqual(gpu_check_report.parse_ctest(same_size)["total"], 10)

    def test_parameterized_and_overlong_names(self):
        # GoogleTest's parameterized names carry "  # GetParam() = ..." after a space, and a
        # name past ctest's column has no dots before its status.
        log = """\
1/4 Test #498: Shapes/Conv2dKernelSweep.MatchesReference/k1  # GetParam() = k1 .....***Skipped   0.04 sec
2/4 Test #499: Policies/BackendSweep.Conv/native  # GetParam() = 4-byte object <00-00 00-00> ...   Passed    1.50 sec
3/4 Test #500: Shapes/Sweep.Exact/k3  # GetParam() = k3 ***Failed    0.30 sec
4/4 Test #501: Very.LongNameWithoutDots   Passed    0.01 sec
"""
        tests = gpu_check_report.parse_ctest(log)
        self.assertEqual((tests["passed"], tests["failed"], tests["skipped"], tests["total"]),
                         (2, 1, 1, 4))
        self.assertEqual(tests["failed_names"], ["Shapes/Sweep.Exact/k3"])
        self.assertTrue(tests["complete"])

    def test_no_ctest_output_is_zero_tests_not_a_pass(self):
        tests = gpu_check_report.parse_ctest("ninja: build stopped: subcommand failed.")
        self.assertEqual(tests["total"], 0)
        self.assertFalse(tests["complete"])


class WorkFolder(unittest.TestCase):
    """A carried commit and a work folder with the GPU's name, as the GPU check leaves them."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.carry = os.path.join(self.tmp.name, "carry")
        self.work = os.path.join(self.tmp.name, "work")
        write(os.path.join(self.carry, "commit"), "abc123\n")
        write(os.path.join(self.carry, "kernels_tree"), "k1\n")
        write(os.path.join(self.carry, "engine_tree"), "e1\n")
        write(os.path.join(self.work, "gpu.txt"), "NVIDIA H200, 580.159.04\n")

    def tearDown(self):
        self.tmp.cleanup()


class BuildReport(WorkFolder):
    def report(self):
        return gpu_check_report.build_report(self.carry, self.work, CTEST_LOG, NOW, cuda="13.0")

    def test_changes_the_commit_lacks_are_listed(self):
        self.assertEqual(self.report()["uncommitted"], [])
        write(os.path.join(self.carry, "uncommitted"), " M engine/x.cpp\n?? notes.txt\n")
        self.assertEqual(self.report()["uncommitted"], [" M engine/x.cpp", "?? notes.txt"])

    def test_the_issue_keys_from_every_input(self):
        write(os.path.join(self.work, "verify-fashion-cnn.json"), json.dumps(
            [{"model": "fashion-cnn", "layer": "conv1", "pass": "forward", "impl": "native",
              "max_abs": 1e-6, "max_rel": 1e-5, "ok": True}]))
        write(os.path.join(self.work, "train-native.json"),
              json.dumps(train_report(0.925, [4.0, 2.0, 3.0])))
        write(os.path.join(self.work, "stages.txt"), "build ok 80\ntrain-native ok 12\n")
        r = self.report()
        for key in ("commit", "kernels_tree", "engine_tree", "date", "gpu", "driver", "cuda",
                    "cudnn", "tests", "verify", "train"):
            self.assertIn(key, r)
        self.assertEqual((r["commit"], r["kernels_tree"], r["engine_tree"]), ("abc123", "k1", "e1"))
        self.assertEqual((r["gpu"], r["driver"], r["cudnn"]), ("NVIDIA H200", "580.159.04", "9.13.0"))
        self.assertEqual(r["date"], "2026-11-21T12:00:00+00:00")
        self.assertEqual(len(r["verify"]), 1)
        [native] = r["train"]
        self.assertEqual((native["impl"], native["epochs_run"], native["test_accuracy"]),
                         ("native", 3, 0.925))
        self.assertAlmostEqual(native["seconds_per_epoch"], 3.0)
        self.assertEqual(native["first_epoch_seconds"], 4.0)
        self.assertEqual(native["status"], "ok")
        self.assertIn("at most 20 epochs", native["recipe"])
        self.assertEqual(r["stages"][0], {"stage": "build", "status": "ok", "seconds": 80.0})

    def test_a_training_the_budget_cut_reports_its_logged_epochs_without_an_accuracy(self):
        write(os.path.join(self.work, "stages.txt"), "train-cudnn failed-124 200\n")
        write(os.path.join(self.work, "train-cudnn.log"),
              "cuDNN algorithms chosen\n"
              "Epoch 1/20 - 1500 steps - 5.5s - 3ms/step - accuracy: 0.8 - loss: 0.5\n"
              "Epoch 2/20 - 1500 steps - 2.5s - 2ms/step - accuracy: 0.85 - loss: 0.4\n")
        [cudnn] = self.report()["train"]
        self.assertEqual((cudnn["impl"], cudnn["epochs_run"], cudnn["status"]),
                         ("cudnn", 2, "failed-124"))
        self.assertIsNone(cudnn["test_accuracy"])
        self.assertAlmostEqual(cudnn["seconds_per_epoch"], 4.0)
        self.assertIn("at most 20 epochs", cudnn["recipe"])

    def test_runs_with_other_seeds_follow_native_and_cudnn(self):
        write(os.path.join(self.work, "stages.txt"),
              "train-native ok 30\ntrain-cudnn ok 30\ntrain-native-seed1 ok 30\n"
              "train-native-seed2 skipped 0\n")
        for name, acc in (("native", 0.91), ("cudnn", 0.912), ("native-seed1", 0.915)):
            write(os.path.join(self.work, f"train-{name}.json"),
                  json.dumps(train_report(acc, [3.0, 2.0])))
        rows = self.report()["train"]
        self.assertEqual([(t["impl"], t["seed"], t["test_accuracy"], t["status"]) for t in rows],
                         [("native", 42, 0.91, "ok"), ("cudnn", 42, 0.912, "ok"),
                          ("native", 1, 0.915, "ok"), ("native", 2, None, "skipped")])
        self.assertIn("seed 1", rows[2]["recipe"])

    def test_missing_and_corrupt_inputs_give_empty_sections_not_an_error(self):
        write(os.path.join(self.work, "verify-mnist-cnn.json"), "{not json")
        r = gpu_check_report.build_report(self.carry, self.work, "", NOW, cuda="")
        self.assertEqual((r["verify"], r["train"], r["stages"]), ([], [], []))
        self.assertEqual(r["tests"]["total"], 0)



class SanitizerReport(WorkFolder):
    def test_a_tool_cut_short_still_counts_the_errors_it_printed(self):
        write(os.path.join(self.work, "stages.txt"), "racecheck failed-124 180\n")
        write(os.path.join(self.work, "racecheck.log"),
              "========= COMPUTE-SANITIZER\n"
              "========= Error: Race reported between Write access at igemm.cuh:300\n"
              "=========     and Read access at igemm.cuh:310 [16 hazards]\n"
              "========= Invalid __shared__ read of size 16 bytes\n"
              "=========     at conv2d_igemm.cuh:420 in implicit_gemm_kernel\n")
        (run,) = gpu_check_report.build_sanitizer_report(self.carry, self.work, NOW,
                                                         cuda="13.0")["sanitizer"]
        self.assertIsNone(run["errors"])
        self.assertEqual(run["errors_seen"], 2)

    def test_each_tool_with_its_errors_and_tests(self):
        write(os.path.join(self.work, "stages.txt"),
              "build ok 70\nmemcheck ok 120\nracecheck failed-3 200\nsynccheck failed-124 90\n")
        write(os.path.join(self.work, "memcheck.log"),
              "========= COMPUTE-SANITIZER\n[  PASSED  ] 195 tests.\n"
              "========= ERROR SUMMARY: 0 errors\n")
        write(os.path.join(self.work, "racecheck.log"),
              "========= Error: Race reported between Write access at conv2d.cu:120\n"
              "[  PASSED  ] 193 tests.\n[  FAILED  ] 2 tests, listed below:\n"
              "========= RACECHECK SUMMARY: 1 hazard displayed (1 error, 0 warnings)\n"
              "========= ERROR SUMMARY: 1 error\n")
        write(os.path.join(self.work, "synccheck.log"), "========= COMPUTE-SANITIZER\n")
        r = gpu_check_report.build_sanitizer_report(self.carry, self.work, NOW, cuda="13.0")
        self.assertEqual((r["commit"], r["gpu"], r["cuda"]), ("abc123", "NVIDIA H200", "13.0"))
        memcheck, racecheck, synccheck = r["sanitizer"]  # the build is not a tool run
        self.assertEqual((memcheck["tool"], memcheck["errors"], memcheck["tests_passed"],
                          memcheck["tests_failed"]), ("memcheck", 0, 195, 0))
        self.assertEqual((racecheck["status"], racecheck["errors"], racecheck["tests_failed"]),
                         ("failed-3", 1, 2))
        # Cut by the budget: no summary is not a clean run.
        self.assertEqual((synccheck["status"], synccheck["errors"], synccheck["tests_passed"]),
                         ("failed-124", None, None))
        self.assertEqual((memcheck["errors_seen"], racecheck["errors_seen"]), (0, 1))
        self.assertEqual(len(r["stages"]), 4)

if __name__ == "__main__":
    unittest.main()
