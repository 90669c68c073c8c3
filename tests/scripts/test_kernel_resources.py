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


# As cuobjdump -sass prints it (each instruction's encoding continues on a second line).
SASS = f"""
\tcode for sm_90
\t\tFunction : {GEMM}
\t.headerflags\t@"EF_CUDA_SM90 EF_CUDA_VIRTUAL_SM(EF_CUDA_SM90)"
        /*0000*/                   LDC R1, c[0x0][0x28] ;                 /* 0x00000a00ff017b82 */
                                                                          /* 0x000fe20000000800 */
        /*0010*/                   LDS.128 R8, [R2] ;                     /* 0x0000000002087984 */
        /*0020*/                   LDS.128 R12, [R3+0x100] ;              /* 0x0000000003087984 */
        /*0030*/               @P0 LDG.E.128 R4, desc[UR4][R6.64] ;       /* 0x0000000406047981 */
        /*0040*/              @!P1 LDG.E R5, desc[UR4][R6.64] ;           /* 0x0000000406057981 */
        /*0048*/                   LD.E R6, [R6.64] ;                     /* 0x0000000406067980 */
        /*0050*/                   FFMA R20, R8, R12, R20 ;               /* 0x0000000c08147223 */
        /*0060*/                   FFMA R21, R9, R12, R21 ;               /* 0x0000000c09157223 */
        /*0070*/                   HMMA.1684.F32.TF32 R24, R8, R12, R24 ; /* 0x0000000c08187237 */
        /*0080*/                   DFMA R30, R28, R28, R30 ;              /* 0x0000001c1c1e722b */
        /*0090*/                   STL [R1+0x4], R7 ;                     /* 0x0000040701007387 */
        /*00a0*/                   BAR.SYNC.DEFER_BLOCKING 0x0 ;          /* 0x0000000000007b1d */
        /*00a8*/              @!P0 BRA 0x10 ;                             /* 0xfffffffc00fc8947 */
        /*00b0*/                   EXIT ;                                 /* 0x000000000000794d */
        /*00c0*/                   BRA 0xc0;                              /* 0xfffffffc00fc7947 */
\t\t..........

\t\tFunction : {FILL}
        /*0000*/                   STG.E desc[UR4][R2.64], R5 ;           /* 0x0000000502007986 */
        /*0010*/                   EXIT ;                                 /* 0x000000000000794d */
"""


class SassTest(unittest.TestCase):
    def test_instructions_by_function_with_predicates_stripped(self):
        funcs = kr.parse_sass(SASS)
        self.assertEqual(set(funcs), {GEMM, FILL})
        ops = [op for _, op, _ in funcs[GEMM]]
        self.assertEqual(ops.count("LDS.128"), 2)
        self.assertEqual(ops[4:6], ["LDG.E", "LD.E"])
        self.assertEqual(funcs[FILL], [(0x0, "STG.E", None), (0x10, "EXIT", None)])
        # Branches keep their targets: the loop's back edge, and the closing self-branch.
        self.assertEqual([(a, t) for a, op, t in funcs[GEMM] if op == "BRA"],
                         [(0xa8, 0x10), (0xc0, 0xc0)])

    def test_census_and_main_loop(self):
        c = kr.sass_census(kr.parse_sass(SASS)[GEMM])
        loop = c.pop("main_loop")
        self.assertEqual(c, {"instructions": 15, "ffma": 2, "fp64": 1, "hmma": 1, "lds": 2,
                             "lds_128": 2, "sts": 0, "ldg": 2, "ldg_128": 1, "ld_generic": 1,
                             "stg": 0, "st_generic": 0, "local": 1, "bar": 1})
        # 0x10 .. 0xa8: everything but the first LDC, the EXIT and the self-branch; four
        # math instructions (2 FFMA, 1 HMMA, 1 DFMA) per 2 shared loads.
        self.assertEqual((loop["begin"], loop["end"], loop["instructions"]), ("0x10", "0xa8", 12))
        self.assertEqual((loop["ffma"], loop["hmma"], loop["lds"]), (2, 1, 2))
        self.assertEqual(loop["math_per_shared_load"], 2.0)

    def test_main_loop_is_the_innermost_loop_with_the_most_math(self):
        ins = [(0x00, "LDG.E", None),          # outer loop: staging, then the inner loop
               (0x10, "STS", None), (0x20, "BAR.SYNC", None),
               (0x30, "LDS.128", None), (0x40, "FFMA", None), (0x50, "FFMA", None),
               (0x60, "BRA", 0x30),            # inner loop: 1 load, 2 FFMA
               (0x70, "FFMA", None),           # peeled, outside the inner loop
               (0x80, "BRA", 0x00),
               (0x90, "LDG.E", None), (0xa0, "FFMA", None),
               (0xb0, "BRA", 0x90)]            # a second innermost loop, 1 FFMA
        loop = kr.main_loop(ins)
        self.assertEqual((loop["begin"], loop["end"], loop["ffma"]), ("0x30", "0x60", 2))
        self.assertEqual(loop["math_per_shared_load"], 2.0)

    def test_no_main_loop_without_math_in_a_loop(self):
        self.assertIsNone(kr.sass_census(kr.parse_sass(SASS)[FILL])["main_loop"])
        self.assertIsNone(kr.main_loop([(0x0, "LDG.E", None), (0x10, "BRA", 0x0)]))

    def test_rules_hold_matching_kernels_only(self):
        records = [record("gemm<Tf32MathT>", sass={"hmma": 0, "main_loop": {"lds": 24}}),
                   record("gemm<FmaMathT>", sass={"hmma": 2, "main_loop": None}),
                   record("fill_kernel")]  # no census: not judged
        budget = {"sass_rules": [
            {"match": "^(?!.*Tf32MathT)", "max": {"hmma": 0}, "why": "strict"},
            {"match": "Tf32MathT", "min": {"hmma": 1}, "why": "tensor cores"},
            {"match": "MathT", "min": {"main_loop.lds": 1}, "why": "shared loads"}]}
        self.assertEqual(kr.sass_problems(records, budget), [
            "gemm<FmaMathT> (kernels/src/x.cu): hmma 2, at most 0: strict",
            "gemm<Tf32MathT> (kernels/src/x.cu): hmma 0, at least 1: tensor cores",
            "gemm<FmaMathT> (kernels/src/x.cu): main_loop.lds 0, at least 1: shared loads"])


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


FAKE_CUOBJDUMP = """#!{python}
import sys
if sys.argv[1:] == ["--version"]:
    print("Cuda compilation tools, release 13.5, V13.5.37")
    sys.exit(0)
sys.stdout.write({sass!r})
"""


def write_tool(path, text):
    with open(path, "w") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)


class CommandTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        d = self.dir.name
        os.makedirs(os.path.join(d, "bin"))
        self.nvcc = os.path.join(d, "bin", "nvcc")
        write_tool(self.nvcc, FAKE_NVCC.format(python=sys.executable, ptx=PTX, ptxas=PTXAS))
        self.cuobjdump = os.path.join(d, "cuobjdump")
        write_tool(self.cuobjdump, FAKE_CUOBJDUMP.format(python=sys.executable, sass=SASS))
        self.src = os.path.join(d, "kernels", "src")
        os.makedirs(self.src)
        with open(os.path.join(self.src, "x.cu"), "w") as f:
            f.write("// kernels\n")
        # No cuobjdump but the stand-in a test names: none from the environment or the one
        # scripts/sass_tools.sh may have fetched into this tree.
        env = mock.patch.dict(os.environ)
        env.start()
        self.addCleanup(env.stop)
        os.environ.pop("CUOBJDUMP", None)
        fetched = mock.patch.object(kr, "FETCHED_CUOBJDUMP", os.path.join(d, "none", "cuobjdump"))
        fetched.start()
        self.addCleanup(fetched.stop)

    def tearDown(self):
        self.dir.cleanup()

    def run_main(self, *extra):
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = kr.main(["--nvcc", self.nvcc, "--sources", self.src, "--jobs", "1", *extra])
        return rc, out.getvalue(), err.getvalue()

    def budget(self, allow, sass_rules=()):
        path = os.path.join(self.dir.name, "budget.json")
        with open(path, "w") as f:
            json.dump({"allow": allow, "sass_rules": list(sass_rules)}, f)
        return path

    def allow_gemm(self):
        name = kr.short_name(kr.demangle([GEMM])[GEMM])
        return [{"kernel": name, "stack_frame_bytes": 24, "spill_store_bytes": 28,
                 "spill_load_bytes": 20}]

    def test_records_and_table(self):
        out_json = os.path.join(self.dir.name, "out.json")
        rc, out, _ = self.run_main("--json", out_json)
        self.assertEqual(rc, 0)
        self.assertIn("implicit_gemm_kernel", out)
        with open(out_json) as f:
            data = json.load(f)
        self.assertEqual(data["nvcc"], "13.0")
        self.assertIsNone(data["cuobjdump_release"])  # no census without one
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
        rc, out, _ = self.run_main("--quiet", "--budget", self.budget(self.allow_gemm()))
        self.assertEqual(rc, 0)
        self.assertIn("2 kernels within budget.json", out)

    def test_sass_census_and_its_rules_with_cuobjdump(self):
        out_json = os.path.join(self.dir.name, "out.json")
        rules = [{"match": "fill", "min": {"stg": 1}, "why": "it stores"},
                 {"match": "implicit_gemm", "max": {"hmma": 0}, "why": "strict FP32"}]
        rc, _, err = self.run_main("--quiet", "--cuobjdump", self.cuobjdump, "--json", out_json,
                                   "--budget", self.budget(self.allow_gemm(), rules))
        self.assertEqual(rc, 1)
        self.assertIn("hmma 1, at most 0: strict FP32", err)
        self.assertNotIn("it stores", err)
        with open(out_json) as f:
            data = json.load(f)
        self.assertEqual(data["cuobjdump_release"], "13.5")
        gemm, fill = data["kernels"]
        self.assertEqual((gemm["sass"]["ffma"], gemm["sass"]["lds_128"]), (2, 2))
        self.assertEqual(fill["sass"]["stg"], 1)

    def test_without_cuobjdump_the_sass_rules_are_reported_unchecked(self):
        rules = [{"match": "implicit_gemm", "max": {"hmma": 0}, "why": "strict FP32"}]
        with mock.patch.dict(os.environ, {"PATH": self.dir.name + "/bin"}, clear=True):
            rc, _, err = self.run_main("--quiet", "--budget",
                                       self.budget(self.allow_gemm(), rules))
        self.assertEqual(rc, 0)
        self.assertIn("no cuobjdump, so the budget's SASS rules were not checked", err)
        self.assertIn("scripts/sass_tools.sh fetches one", err)

    def test_the_cuobjdump_that_sass_tools_fetched_is_found_last(self):
        # Nothing given, none in the environment, beside nvcc or on the PATH: the one in
        # .tools/sass/bin serves, and the rules are checked.
        rules = [{"match": "implicit_gemm", "max": {"hmma": 0}, "why": "strict FP32"}]
        with mock.patch.dict(os.environ, {"PATH": self.dir.name + "/bin"}, clear=True), \
                mock.patch.object(kr, "FETCHED_CUOBJDUMP", self.cuobjdump):
            self.assertEqual(kr.find_cuobjdump(None, self.nvcc), self.cuobjdump)
            rc, _, err = self.run_main("--quiet", "--budget",
                                       self.budget(self.allow_gemm(), rules))
        self.assertEqual(rc, 1)
        self.assertIn("hmma 1, at most 0: strict FP32", err)
        # Any other source comes first.
        beside = os.path.join(self.dir.name, "bin", "cuobjdump")
        write_tool(beside, "#!/bin/sh\n")
        self.assertEqual(kr.find_cuobjdump(None, self.nvcc), beside)

    def test_a_source_that_does_not_compile_exits_2(self):
        with open(os.path.join(self.src, "y.cu"), "w") as f:
            f.write("broken\n")
        rc, _, err = self.run_main("--quiet")
        self.assertEqual(rc, 2)
        self.assertIn("does not compile", err)
        self.assertIn("expected a declaration", err)

    def test_no_nvcc_exits_2(self):
        os.remove(self.nvcc)
        env = {"PATH": self.dir.name + "/bin"}
        with mock.patch.dict(os.environ, env, clear=True), \
                mock.patch.object(kr, "FALLBACK_NVCC", ()):
            rc, _, err = self.run_main("--quiet")
        self.assertEqual(rc, 2)
        self.assertIn("no nvcc found", err)

if __name__ == "__main__":
    unittest.main()
