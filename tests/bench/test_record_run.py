"""Unit tests of bench/record_run.py (python3 -m unittest)."""
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))
import record_run  # noqa: E402


def timed_report():
    """A `cnn train --target-accuracy --report` file: the keys the record reads."""
    evaluations = [{"epoch": 1, "test_accuracy": 0.81, "seconds_from_process_start": 10.0},
                   {"epoch": 2, "test_accuracy": 0.93, "seconds_from_process_start": 19.5}]
    return {"model": "vgg-small", "epochs_run": 2, "best_epoch": None, "test_accuracy": 0.93,
            "history": [{"epoch": 1, "seconds": 9.0}, {"epoch": 2, "seconds": 8.5}],
            "time_to_target": {"target": 0.92, "reached": True, "epoch": 2,
                               "seconds_from_process_start": 19.5, "test_accuracy": 0.93,
                               "evaluations": evaluations}}


class RecordTest(unittest.TestCase):
    def test_the_figures_come_first_and_the_report_whole(self):
        with tempfile.TemporaryDirectory() as d:
            report, out = os.path.join(d, "r.json"), os.path.join(d, "out.json")
            with open(report, "w") as f:
                json.dump(timed_report(), f)
            self.assertEqual(record_run.main([report, out, "--command", "cnn train x",
                                              "--commit", "abc123", "--note", "n"]), 0)
            with open(out) as f:
                r = json.load(f)
            self.assertFalse(os.path.exists(out + ".tmp"))
        self.assertEqual(r["commit"], "abc123")
        self.assertEqual(r["command"], "cnn train x")
        self.assertEqual(r["note"], "n")
        self.assertEqual(r["seconds_per_epoch"], [9.0, 8.5])
        self.assertEqual(r["epochs_run"], 2)
        self.assertEqual(r["test_accuracy_per_epoch"], [0.81, 0.93])
        self.assertEqual(r["time_to_target"], {"target": 0.92, "reached": True, "epoch": 2,
                                               "seconds_from_process_start": 19.5})
        self.assertEqual(r["report"], timed_report())
        self.assertIn("cores", r["machine"])
        self.assertRegex(r["date"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")

    def test_a_run_without_a_target_has_no_per_epoch_test_figures(self):
        report = timed_report()
        del report["time_to_target"]
        r = record_run.record(report, "c", "sha", "", record_run.datetime.datetime.now(
            record_run.datetime.timezone.utc))
        self.assertNotIn("test_accuracy_per_epoch", r)
        self.assertNotIn("time_to_target", r)
        self.assertNotIn("note", r)


if __name__ == "__main__":
    unittest.main()
