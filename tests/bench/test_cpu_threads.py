"""Unit tests of bench/cpu_threads.py (python3 -m unittest), with a stand-in for `cnn`
whose step time is 120 ms divided by its thread count."""
import json
import os
import stat
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import cpu_threads  # noqa: E402

FAKE_CNN = textwrap.dedent("""\
    #!/usr/bin/env python3
    import json, os, sys
    args = sys.argv[1:]
    opt = {args[i]: args[i + 1] for i in range(1, len(args) - 1, 2)}
    threads = int(opt["--threads"])
    core = os.environ.get("OPENBLAS_CORETYPE", "Cooperlake")
    if opt["--model"] == "broken":
        print("cnn: no such model", file=sys.stderr)
        sys.exit(1)
    with open(opt["--json"], "w") as f:
        json.dump({"model": opt["--model"], "device": "cpu", "cpu_threads": threads,
                   "batch_size": int(opt["--batch-size"]),
                   "step_ms": 120.0 / threads * (1.5 if core == "Haswell" else 1.0),
                   "cpu_gemm": f"OpenBLAS 0.3.21 ({core} kernels)",
                   "build": {"commit": "abc-dirty"}}, f)
    """)


class CpuThreadsTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.cnn = os.path.join(self.dir.name, "cnn")
        with open(self.cnn, "w") as f:
            f.write(FAKE_CNN)
        os.chmod(self.cnn, os.stat(self.cnn).st_mode | stat.S_IEXEC)

    def tearDown(self):
        self.dir.cleanup()

    def test_each_run_and_thread_count_is_a_row_with_its_speedup(self):
        out = os.path.join(self.dir.name, "threads.json")
        code = cpu_threads.main([out, "--cnn", self.cnn, "--threads", "1,2,4",
                                 "--runs", "fashion-cnn:32,vgg-small:128", "--steps", "2"])
        self.assertEqual(code, 0)
        with open(out) as f:
            r = json.load(f)
        self.assertEqual(r["steps"], 2)
        self.assertIn("cores", r["machine"])
        self.assertEqual(r["build"], {"commit": "abc-dirty"})
        self.assertEqual([(x["model"], x["batch_size"], x["threads"]) for x in r["rows"]],
                         [("fashion-cnn", 32, 1), ("fashion-cnn", 32, 2), ("fashion-cnn", 32, 4),
                          ("vgg-small", 128, 1), ("vgg-small", 128, 2), ("vgg-small", 128, 4)])
        one, four = r["rows"][3], r["rows"][5]  # the stand-in's time also follows the kernels
        self.assertAlmostEqual(four["step_ms"], one["step_ms"] / 4)
        self.assertAlmostEqual(four["speedup_over_one_thread"], 4.0)
        self.assertAlmostEqual(four["images_per_second"], 128 * 1000.0 / four["step_ms"])

    def test_openblas_cores_run_side_by_side_with_their_speedup(self):
        out = os.path.join(self.dir.name, "cores.json")
        saved = os.environ.get("OPENBLAS_CORETYPE")
        os.environ["OPENBLAS_CORETYPE"] = "Haswell"  # as this project's machines set it
        try:
            code = cpu_threads.main([out, "--cnn", self.cnn, "--threads", "1,2",
                                     "--runs", "vgg-small:128", "--openblas-cores",
                                     "Haswell,auto,SkylakeX"])
        finally:
            if saved is None:
                del os.environ["OPENBLAS_CORETYPE"]
            else:
                os.environ["OPENBLAS_CORETYPE"] = saved
        self.assertEqual(code, 0)
        with open(out) as f:
            r = json.load(f)
        self.assertEqual(r["machine"]["openblas_coretype_env"], "Haswell")
        self.assertEqual([(x["openblas_coretype"], x["threads"], x["cpu_gemm"]) for x in r["rows"]],
                         [("Haswell", 1, "OpenBLAS 0.3.21 (Haswell kernels)"),
                          ("Haswell", 2, "OpenBLAS 0.3.21 (Haswell kernels)"),
                          ("auto", 1, "OpenBLAS 0.3.21 (Cooperlake kernels)"),
                          ("auto", 2, "OpenBLAS 0.3.21 (Cooperlake kernels)"),
                          ("SkylakeX", 1, "OpenBLAS 0.3.21 (SkylakeX kernels)"),
                          ("SkylakeX", 2, "OpenBLAS 0.3.21 (SkylakeX kernels)")])
        for row in r["rows"]:
            self.assertAlmostEqual(row["speedup_over_one_thread"], row["threads"])
            self.assertAlmostEqual(row["speedup_over_first_core"],
                                   1.0 if row["openblas_coretype"] == "Haswell" else 1.5)

    def test_without_openblas_cores_the_rows_name_no_core(self):
        rows = cpu_threads.rows_from_profiles(
            [("m", 8, 1, {"cpu_threads": 1, "step_ms": 10.0}, None)])
        self.assertNotIn("openblas_coretype", rows[0])
        self.assertNotIn("speedup_over_first_core", rows[0])

    def test_no_one_thread_row_leaves_the_speedup_empty(self):
        rows = cpu_threads.rows_from_profiles(
            [("m", 8, 2, {"cpu_threads": 2, "step_ms": 10.0}, None)])
        self.assertIsNone(rows[0]["speedup_over_one_thread"])

    def test_a_profile_on_other_threads_than_asked_is_refused(self):
        with self.assertRaisesRegex(ValueError, "asked for 4 threads"):
            cpu_threads.rows_from_profiles([("m", 8, 4, {"cpu_threads": 2, "step_ms": 10.0}, None)])

    def test_a_failing_run_fails_the_script_and_writes_nothing(self):
        out = os.path.join(self.dir.name, "threads.json")
        code = cpu_threads.main([out, "--cnn", self.cnn, "--threads", "1", "--runs", "broken:8"])
        self.assertEqual(code, 1)
        self.assertFalse(os.path.exists(out))

    def test_bad_arguments_are_refused(self):
        for bad in ("fashion-cnn", "fashion-cnn:0", ":32", "fashion-cnn:x"):
            with self.assertRaises(ValueError):
                cpu_threads.parse_runs(bad)
        for bad in ("0", "1,-2"):
            with self.assertRaises(ValueError):
                cpu_threads.parse_threads(bad)
        for bad in ("", "Haswell,", "Haswell,Haswell", "Has well"):
            with self.assertRaises(ValueError):
                cpu_threads.parse_cores(bad)
        self.assertEqual(cpu_threads.parse_threads("1,3"), [1, 3])


if __name__ == "__main__":
    unittest.main()
