"""Unit tests of scripts/kernel_resources.py: its reading of ptxas's and the PTX's text,
the occupancy arithmetic, the budget's rules, and the command's exit codes with a
stand-in nvcc (python3 -m unittest)."""
import io
import json
import os
import stat
import sys
import tempfile
import unittest
from unittest import mock
from contextlib import redirect_stderr, redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
import kernel_resources as kr  # noqa: E402

GEMM = "_ZN4cnnk13conv2d_detail20implicit_gemm_kernelINS0_14ForwardProblemEEEvT_"
FILL = "_ZN4cnnk12_GLOBAL__N_111fill_kernelElfPf"

# As nvcc 13.0 prints it for -cubin --resource-usage (two kernels).
PTXAS = f"""\
ptxas info    : 0 bytes gmem
ptxas info    : Compiling entry function '{GEMM}' for 'sm_90'
ptxas info    : Function properties for {GEMM}
    24 bytes stack frame, 28 bytes spill stores, 20 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 24 bytes cumulative stack size, 45184 bytes smem, 400 bytes cmem[0]
ptxas info    : Compile time = 65.071 ms
ptxas info    : Compiling entry function '{FILL}' for 'sm_90'
ptxas info    : Function properties for {FILL}
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 24 registers, used 0 barriers
ptxas info    : Compile time = 3.1 ms
"""

PTX = f"""\
.extern .shared .align 16 .b8 _ZN4cnnk6detail7dynamicE[];

.visible .entry {GEMM}(
\t.param .align 8 .b8 {GEMM}_param_0[96]
)
.maxntid 256, 1, 1
.minnctapersm 2
{{
\tmov.u64 %rd1, _ZN4cnnk6detail7dynamicE;
\tret;
}}

.visible .entry {FILL}(
\t.param .u64 {FILL}_param_0
)
{{
\tret;
}}
"""


class ParseTest(unittest.TestCase):
    def test_ptxas_fields_of_each_entry(self):
        k = kr.parse_ptxas(PTXAS)
        self.assertEqual(list(k), [GEMM, FILL])
        g = k[GEMM]
        self.assertEqual((g["registers"], g["barriers"], g["shared_static_bytes"],
                          g["constant_bytes"], g["cumulative_stack_bytes"]),
                         (128, 1, 45184, 400, 24))
        self.assertEqual((g["stack_frame_bytes"], g["spill_store_bytes"], g["spill_load_bytes"]),
                         (24, 28, 20))
        self.assertEqual(g["arch"], "sm_90")
        f = k[FILL]
        self.assertEqual((f["registers"], f["shared_static_bytes"], f["stack_frame_bytes"]),
                         (24, 0, 0))

    def test_ptx_declared_block_size_and_dynamic_shared_memory(self):
        p = kr.parse_ptx(PTX)
        self.assertEqual(p[GEMM], {"max_threads": 256, "min_blocks": 2, "dynamic_shared": True})
        self.assertEqual(p[FILL], {"max_threads": None, "min_blocks": None,
                                   "dynamic_shared": False})

    def test_block_size_is_the_product_of_its_dimensions(self):
        p = kr.parse_ptx(".entry k(\n)\n.reqntid 32, 4, 2\n{\nret;\n}\n")
        self.assertEqual(p["k"]["max_threads"], 256)

    def test_short_name_keeps_template_arguments_only(self):
        self.assertEqual(
            kr.short_name("void cnnk::conv2d_detail::implicit_gemm_kernel<cnnk::conv2d_detail::"
                          "ForwardProblem, cnnk::conv2d_detail::FmaMathT<cnnk::conv2d_detail::"
                          "TileT<64, 64, 16>, 68> >(cnnk::conv2d_detail::ForwardProblem)"),
            "implicit_gemm_kernel<ForwardProblem, FmaMathT<TileT<64, 64, 16>, 68> >")
        self.assertEqual(kr.short_name("cnnk::(anonymous namespace)::fill_kernel(long, float, "
                                       "float*)"), "fill_kernel")


class OccupancyTest(unittest.TestCase):
    def check(self, registers, threads, smem, blocks, occ, limited_by):
        o = kr.occupancy(registers, threads, smem)
        self.assertEqual(o["blocks_per_sm"], blocks)
        self.assertAlmostEqual(o["occupancy"], occ)
        self.assertEqual(o["limited_by"], limited_by)

    def test_registers(self):
        # 128 x 32 = 4096 registers per warp: 16 warps fit, 2 blocks of 8 warps.
        self.check(128, 256, 45184, 2, 0.25, ["registers"])
        # 56 x 32 = 1792 per warp: 36 warps, 4 blocks of 8.
        self.check(56, 256, 0, 4, 0.5, ["registers"])
        # 57 x 32 = 1824, rounded up to 2048: 32 warps, still 4 blocks.
        self.check(57, 256, 0, 4, 0.5, ["registers"])
        # 33 x 32 = 1056, rounded up to 1280: 51 warps, 6 blocks (7 without the rounding).
        self.check(33, 256, 0, 6, 0.75, ["registers"])
        # 48 x 32 = 1536: 42 warps, 5 blocks.
        self.check(48, 256, 0, 5, 0.625, ["registers"])

    def test_warps_and_block_count(self):
        self.check(32, 512, 264, 4, 1.0, ["warps", "registers"])
        self.check(12, 1, 0, 32, 0.5, ["blocks"])

    def test_shared_memory_with_the_reserved_kilobyte(self):
        # 100,000 + 1,024 rounded to 101,120 bytes: 2 blocks in 228 KiB.
        self.check(32, 128, 100000, 2, 0.125, ["shared memory"])
        # 115,712 + 1,024 = 116,736 = exactly half of 228 KiB: 2 blocks.
        self.check(32, 128, 115712, 2, 0.125, ["shared memory"])
        # One byte more and only one fits.
        self.check(32, 128, 115713, 1, 0.0625, ["shared memory"])


def record(name, **kw):
    r = {"kernel": name, "file": "kernels/src/x.cu", "stack_frame_bytes": 0,
         "spill_store_bytes": 0, "spill_load_bytes": 0, "min_blocks": None}
    r.update(kw)
    return r


class BudgetTest(unittest.TestCase):
    def test_an_unlisted_spill_is_a_problem(self):
        problems, stale = kr.budget_problems(
            [record("a", stack_frame_bytes=8, spill_store_bytes=8, spill_load_bytes=8)], {})
        self.assertEqual(len(problems), 3)
        self.assertIn("a (kernels/src/x.cu): 8 stack frame bytes (allowed: 0)", problems[0])
        self.assertEqual(stale, [])

    def test_a_listed_spill_within_its_allowance_passes(self):
        budget = {"allow": [{"kernel": "a", "stack_frame_bytes": 24, "spill_store_bytes": 28,
                             "spill_load_bytes": 20}]}
        problems, stale = kr.budget_problems(
            [record("a", stack_frame_bytes=24, spill_store_bytes=28, spill_load_bytes=20),
             record("b")], budget)
        self.assertEqual((problems, stale), ([], []))

    def test_a_listed_spill_that_grew_is_a_problem(self):
        budget = {"allow": [{"kernel": "a", "spill_store_bytes": 28}]}
        problems, _ = kr.budget_problems([record("a", spill_store_bytes=32)], budget)
        self.assertEqual(problems, ["a (kernels/src/x.cu): 32 spill store bytes (allowed: 28)"])

    def test_an_allowance_matches_the_mangled_name_when_nothing_demangled_it(self):
        budget = {"allow": [{"kernel": "a", "mangled": "_Z1av", "spill_store_bytes": 28}]}
        r = record("_Z1av", mangled="_Z1av", spill_store_bytes=28)
        self.assertEqual(kr.budget_problems([r], budget), ([], []))

    def test_an_allowance_no_longer_used_is_reported_stale(self):
        budget = {"allow": [{"kernel": "a", "spill_store_bytes": 28}]}
        problems, stale = kr.budget_problems([record("a")], budget)
        self.assertEqual((problems, stale), ([], ["a"]))

    def test_shared_memory_that_breaks_the_declared_minimum_of_blocks(self):
        r = record("g", min_blocks=4, blocks_per_sm=2, limited_by=["shared memory"])
        problems, _ = kr.budget_problems([r], {})
        self.assertEqual(problems, ["g (kernels/src/x.cu): declares 4 resident blocks per SM, "
                                    "but shared memory allow only 2"])
        self.assertEqual(kr.budget_problems([dict(r, blocks_per_sm=4)], {})[0], [])


# A stand-in for nvcc: prints PTXAS on stderr and writes PTX into --keep-dir, as
# nvcc -cubin --resource-usage --keep does; fails when the source holds "broken".
FAKE_NVCC = """#!{python}
import os, sys
args = sys.argv[1:]
if args == ["--version"]:
    print("Cuda compilation tools, release 13.0, V13.0.48")
    sys.exit(0)
keep = args[args.index("--keep-dir") + 1]
source = args[-1]
if "broken" in open(source).read():
    sys.stderr.write(source + "(1): error: expected a declaration\\n")
    sys.exit(1)
with open(os.path.join(keep, "x.ptx"), "w") as f:
    f.write({ptx!r})
sys.stderr.write({ptxas!r})
"""


class CommandTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        self.nvcc = os.path.join(d, "nvcc")
        with open(self.nvcc, "w") as f:
            f.write(FAKE_NVCC.format(python=sys.executable, ptx=PTX, ptxas=PTXAS))
        os.chmod(self.nvcc, os.stat(self.nvcc).st_mode | stat.S_IEXEC)
        self.src = os.path.join(d, "kernels", "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "x.cu"), "w") as f:
            f.write("// kernels\n")

    def tearDown(self):
        self.dir.cleanup()

    def run_main(self, *extra):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = kr.main(["--nvcc", self.nvcc, "--sources", self.src, "--jobs", "1", *extra])
        return rc, out.getvalue(), err.getvalue()

    def budget(self, allow):
        path = os.path.join(self.dir.name, "budget.json")
        with open(path, "w") as f:
            json.dump({"allow": allow}, f)
        return path

    def test_records_and_table(self):
        out_json = os.path.join(self.dir.name, "out.json")
        rc, out, _ = self.run_main("--json", out_json)
        self.assertEqual(rc, 0)
        self.assertIn("implicit_gemm_kernel", out)
        with open(out_json) as f:
            data = json.load(f)
        self.assertEqual(data["nvcc"], "13.0")
        self.assertEqual(data["arch"], "sm_90")
        gemm, fill = data["kernels"]
        self.assertEqual((gemm["max_threads"], gemm["blocks_per_sm"], gemm["limited_by"]),
                         (256, 2, ["registers"]))
        self.assertIsNone(fill["max_threads"])
        self.assertNotIn("blocks_per_sm", fill)

    def test_over_budget_exits_1_and_names_the_kernel(self):
        rc, _, err = self.run_main("--quiet", "--budget", self.budget([]))
        self.assertEqual(rc, 1)
        self.assertIn("28 spill store bytes (allowed: 0)", err)

    def test_within_budget_exits_0(self):
        name = kr.short_name(kr.demangle([GEMM])[GEMM])
        rc, out, _ = self.run_main("--quiet", "--budget", self.budget(
            [{"kernel": name, "stack_frame_bytes": 24, "spill_store_bytes": 28,
              "spill_load_bytes": 20}]))
        self.assertEqual(rc, 0)
        self.assertIn("2 kernels within budget.json", out)

    def test_a_source_that_does_not_compile_exits_2(self):
        with open(os.path.join(self.src, "y.cu"), "w") as f:
            f.write("broken\n")
        rc, _, err = self.run_main("--quiet")
        self.assertEqual(rc, 2)
        self.assertIn("does not compile", err)
        self.assertIn("expected a declaration", err)

    def test_no_nvcc_exits_2(self):
        os.remove(self.nvcc)
        env = {"PATH": self.dir.name}
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch.object(kr, "FALLBACK_NVCC", ()):
            rc, _, err = self.run_main("--quiet")
        self.assertEqual(rc, 2)
        self.assertIn("no nvcc found", err)

if __name__ == "__main__":
    unittest.main()
