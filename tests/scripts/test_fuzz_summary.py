"""Unit tests of scripts/fuzz_summary.py on fake libFuzzer logs (python3 -m unittest)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import fuzz_summary  # noqa: E402

FINISHED_LOG = """\
INFO: Seed: 1234
#2	INITED cov: 200 ft: 300 corp: 10/100b exec/s: 0 rss: 40Mb
#177395	REDUCE cov: 276 ft: 516 corp: 44/638b lim: 1555 exec/s: 844 rss: 410Mb L: 10/34
#200785	DONE   cov: 276 ft: 516 corp: 44/638b lim: 1785 exec/s: 833 rss: 410Mb
Done 200785 runs in 241 second(s)
stat::number_of_executed_units: 200785
stat::average_exec_per_sec:     833
stat::new_units_added:          163
stat::peak_rss_mb:              410
"""

CRASHED_LOG = """\
#500	NEW    cov: 90 ft: 120 corp: 5/50b exec/s: 250 rss: 60Mb
==123==ERROR: AddressSanitizer: heap-buffer-overflow
artifact_prefix='build-fuzz/artifacts/weights/'; Test unit written to crash-abc
"""


class FuzzSummary(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = self.tmp.name
        with open(os.path.join(self.dir, "fuzz-idx.log"), "w") as f:
            f.write(FINISHED_LOG)
        with open(os.path.join(self.dir, "fuzz-weights.log"), "w") as f:
            f.write(CRASHED_LOG)
        os.makedirs(os.path.join(self.dir, "artifacts", "weights"))
        open(os.path.join(self.dir, "artifacts", "weights", "crash-abc"), "w").close()
        os.makedirs(os.path.join(self.dir, "artifacts", "idx"))

    def tearDown(self):
        self.tmp.cleanup()

    def test_a_finished_target(self):
        r = fuzz_summary.target_record(self.dir, "idx")
        self.assertTrue(r["completed"])
        self.assertEqual((r["executions"], r["seconds"], r["executions_per_second"]),
                         (200785, 241, 833))
        self.assertEqual((r["coverage"], r["features"], r["corpus_units"]), (276, 516, 44))
        self.assertEqual(r["peak_rss_mb"], 410)
        self.assertEqual(r["findings"], [])

    def test_a_target_with_a_finding_is_not_completed(self):
        r = fuzz_summary.target_record(self.dir, "weights")
        self.assertFalse(r["completed"])
        self.assertEqual(r["findings"], ["crash-abc"])
        self.assertEqual(r["coverage"], 90)

    def test_a_missing_log_is_said(self):
        self.assertIn("error", fuzz_summary.target_record(self.dir, "checkpoint"))

    def test_the_record_counts_findings(self):
        out = os.path.join(self.dir, "summary.json")
        self.assertEqual(fuzz_summary.main(["x", self.dir, "240", out, "idx", "weights"]), 0)
        with open(out) as f:
            rec = json.load(f)
        self.assertEqual(rec["seconds_per_target"], 240)
        self.assertEqual([t["target"] for t in rec["targets"]], ["idx", "weights"])
        self.assertEqual(rec["findings"], 1)
        for key in ("commit", "date", "machine"):
            self.assertIn(key, rec)


if __name__ == "__main__":
    unittest.main()
