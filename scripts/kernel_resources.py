#!/usr/bin/env python3
"""What each kernel of kernels/src costs a multiprocessor, read off the compiler: registers,
shared memory, barriers, stack frame and spills (ptxas --resource-usage), the block size
it declares (__launch_bounds__, from the PTX), and the blocks per multiprocessor and the
occupancy those allow on a Hopper SM. Needs nvcc only, no GPU.

A kernel with a stack frame keeps something in local memory (a spill, or a register
array indexed at run time): off-chip traffic that no timing on a GPU names as clearly.
With --budget the script fails (exit 1) on any such kernel that the budget file does not
allow, and on a kernel whose declared minimum of resident blocks its shared memory
cannot meet.

Where cuobjdump is found (it ships with the CUDA toolkit's full install and in Triton's
wheel, not in every slim one; scripts/sass_tools.sh fetches NVIDIA's own), each kernel also gets a census of its SASS: FP32 and FP64
math, tensor-core instructions, shared, global and local memory operations by width,
barriers. The budget's SASS rules then hold kernels to what they claim: no tensor-core
instruction in a strict-FP32 kernel, some in a TF32 one. Without cuobjdump those rules
are reported unchecked, not failed.

Usage: kernel_resources.py [--nvcc NVCC] [--cuobjdump TOOL] [--arch 90] [--json OUT]
                           [--budget FILE]
"""
import argparse
import concurrent.futures
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench_report import nvcc_release  # noqa: E402
from record_run import write_json  # noqa: E402

# The flags of the kernels' build (kernels/CMakeLists.txt, a Release build): the register
# allocation depends on -O3 and on NDEBUG (assert keeps values alive).
FLAGS = ["-std=c++17", "-O3", "-DNDEBUG", "-lineinfo", "--expt-relaxed-constexpr"]

# A multiprocessor of compute capability 9.0 (H100, H200), from the CUDA C++ Programming
# Guide's table of technical specifications per compute capability, and the allocation
# rules of the CUDA occupancy calculator: registers go to warps in units of 256, shared
# memory to blocks in units of 128 bytes, and each block also holds 1 KiB that the
# runtime reserves.
SM90 = {
    "max_threads": 2048,
    "max_warps": 64,
    "max_blocks": 32,
    "registers": 65536,
    "register_unit_per_warp": 256,
    "max_registers_per_thread": 255,
    "shared_bytes": 228 * 1024,
    "shared_unit": 128,
    "shared_reserved_per_block": 1024,
}


def round_up(value, unit):
    return (value + unit - 1) // unit * unit


def occupancy(registers, threads, shared_bytes, sm=SM90):
    """Resident blocks per SM for a kernel of `registers` per thread, `threads` per block
    and `shared_bytes` of shared memory per block; the fraction of the SM's warps they
    fill; and which limits bind ("warps", "registers", "shared memory", "blocks")."""
    warps = -(-threads // 32)
    per_warp = round_up(max(registers, 1) * 32, sm["register_unit_per_warp"])
    limits = {
        "warps": sm["max_warps"] // warps,
        "registers": (sm["registers"] // per_warp) // warps,
        "shared memory": sm["shared_bytes"] // round_up(
            shared_bytes + sm["shared_reserved_per_block"], sm["shared_unit"]),
        "blocks": sm["max_blocks"],
    }
    blocks = min(limits.values())
    return {
        "blocks_per_sm": blocks,
        "occupancy": round(blocks * warps / sm["max_warps"], 4),
        "limited_by": [name for name, v in limits.items() if v == blocks],
    }


ENTRY = re.compile(r"Compiling entry function '([^']+)' for 'sm_(\w+)'")
PROPERTIES = re.compile(r"Function properties for (\S+)")
FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
USED = re.compile(r"Used (\d+) registers")
FIELDS = {
    "barriers": re.compile(r"used (\d+) barriers"),
    "shared_static_bytes": re.compile(r"(\d+) bytes smem"),
    "constant_bytes": re.compile(r"(\d+) bytes cmem\[0\]"),
    "cumulative_stack_bytes": re.compile(r"(\d+) bytes cumulative stack size"),
}


def parse_ptxas(text):
    """The kernels of one `ptxas --resource-usage` report, by mangled name, in order."""
    kernels, current, properties_of = {}, None, None
    for line in text.splitlines():
        m = ENTRY.search(line)
        if m:
            current = m.group(1)
            kernels[current] = {"mangled": current, "arch": "sm_" + m.group(2)}
            continue
        m = PROPERTIES.search(line)
        if m:
            properties_of = m.group(1)
            continue
        m = FRAME.search(line)
        if m and properties_of in kernels:
            kernels[properties_of].update(
                stack_frame_bytes=int(m.group(1)), spill_store_bytes=int(m.group(2)),
                spill_load_bytes=int(m.group(3)))
            continue
        m = USED.search(line)
        if m and current in kernels:
            k = kernels[current]
            k["registers"] = int(m.group(1))
            for key, pattern in FIELDS.items():
                f = pattern.search(line)
                k[key] = int(f.group(1)) if f else 0
    return kernels


PTX_ENTRY = re.compile(r"\.entry\s+(\S+)\s*\(")
EXTERN_SHARED = re.compile(r"\.extern\s+\.shared\s[^;]*?(\S+)\[\]\s*;")


def parse_ptx(text):
    """Per entry of a PTX module: the block size it declares (.maxntid or .reqntid, as
    x*y*z), its .minnctapersm, and whether it uses dynamic shared memory (a reference to
    an .extern .shared array)."""
    dynamic = [re.escape(name) for name in EXTERN_SHARED.findall(text)]
    out = {}
    matches = list(PTX_ENTRY.finditer(text))
    for i, m in enumerate(matches):
        body = text[m.end():matches[i + 1].start() if i + 1 < len(matches) else len(text)]
        head = body[:body.find("{")] if "{" in body else body
        entry = {"max_threads": None, "min_blocks": None}
        nt = re.search(r"\.(?:maxntid|reqntid)\s+(\d+)(?:\s*,\s*(\d+))?(?:\s*,\s*(\d+))?", head)
        if nt:
            entry["max_threads"] = (int(nt.group(1)) * int(nt.group(2) or 1) *
                                    int(nt.group(3) or 1))
        mb = re.search(r"\.minnctapersm\s+(\d+)", head)
        if mb:
            entry["min_blocks"] = int(mb.group(1))
        entry["dynamic_shared"] = any(re.search(r"\b" + d + r"\b", body) for d in dynamic)
        out[m.group(1)] = entry
    return out


def demangle(names):
    """c++filt's reading of each mangled name (the name itself where c++filt is absent)."""
    tool = shutil.which("c++filt")
    if not tool or not names:
        return {n: n for n in names}
    text = subprocess.run([tool], input="\n".join(names), capture_output=True, text=True).stdout
    lines = text.splitlines()
    return dict(zip(names, lines)) if len(lines) == len(names) else {n: n for n in names}


def short_name(demangled):
    """The kernel and its template arguments, without namespaces, return type or
    parameters: implicit_gemm_kernel<ForwardProblem, FmaMathT<TileT<64, 64, 16>, 68> >."""
    s = demangled
    for prefix in ("(anonymous namespace)::", "cnnk::", "conv2d_detail::", "act_detail::",
                   "detail::"):
        s = s.replace(prefix, "")
    if s.startswith("void "):
        s = s[5:]
    depth = 0
    for i, ch in enumerate(s):
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "(" and depth == 0:
            return s[:i]
    return s


SASS_FUNCTION = re.compile(r"^\s*Function : (\S+)")
# An instruction line: its address in a comment, an optional predicate, the opcode with
# its modifiers (LDS.128, HMMA.1688.F32.TF32, ...), then its operands.
SASS_INSTRUCTION = re.compile(
    r"^\s*/\*([0-9a-f]{4,})\*/\s+(?:@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_.]*)([^;]*);")
BRANCH_TARGET = re.compile(r"(?:^|,)\s*(0x[0-9a-f]+)\s*$")


def parse_sass(text):
    """`cuobjdump -sass` of one cubin: per function (mangled), its instructions in order as
    (address, opcode with modifiers, branch target or None)."""
    out, current = {}, None
    for line in text.splitlines():
        m = SASS_FUNCTION.match(line)
        if m:
            current = out.setdefault(m.group(1), [])
            continue
        m = SASS_INSTRUCTION.match(line)
        if m and current is not None:
            target = None
            if m.group(2).split(".")[0] == "BRA":
                t = BRANCH_TARGET.search(m.group(3).strip())
                target = int(t.group(1), 16) if t else None
            current.append((int(m.group(1), 16), m.group(2), target))
    return out


def census(instructions):
    """The counts people look for first, over (address, opcode, target) instructions:
    static instructions in the code, not executed ones."""
    def count(base, width=None):
        return sum(1 for _, op, _ in instructions
                   if op.split(".")[0] == base and (width is None or "." + width in op))
    return {
        "instructions": len(instructions),
        "ffma": count("FFMA"),
        "fp64": count("DFMA") + count("DADD") + count("DMUL"),
        "hmma": count("HMMA") + count("HGMMA"),
        "lds": count("LDS"), "lds_128": count("LDS", "128"),
        "sts": count("STS"),
        "ldg": count("LDG"), "ldg_128": count("LDG", "128"),
        # Generic loads and stores (LD, ST): the compiler lost the pointer's space.
        "ld_generic": count("LD"),
        "stg": count("STG"),
        "st_generic": count("ST"),
        "local": count("LDL") + count("STL"),
        "bar": count("BAR"),
    }


def main_loop(instructions):
    """The hot loop: of the loops (a backward branch and the code from its target to it)
    that hold FP32, FP64 or tensor-core math and contain no other such loop, the one with
    the most math; with its census and its math instructions per shared load, which
    register blocking is for. None in straight-line code or without math in a loop. (An
    outer loop around the hot one always holds more math, staging and all, so the
    innermost ones are the candidates.)"""
    loops = []
    for address, _, target in instructions:
        if target is None or target > address:
            continue
        c = census([i for i in instructions if target <= i[0] <= address])
        math = c["ffma"] + c["fp64"] + c["hmma"]
        if math:
            loops.append((math, c, target, address))
    innermost = [loop for loop in loops
                 if not any(o is not loop and loop[2] <= o[2] and o[3] <= loop[3] and
                            (o[2], o[3]) != (loop[2], loop[3]) for o in loops)]
    if not innermost:
        return None
    math, c, begin, end = max(innermost, key=lambda loop: (loop[0], -loop[1]["instructions"]))
    c.update(begin=hex(begin), end=hex(end),
             math_per_shared_load=round(math / c["lds"], 2) if c["lds"] else None)
    return c


def sass_census(instructions):
    """The kernel's census, with its main loop's under "main_loop"."""
    c = census(instructions)
    c["main_loop"] = main_loop(instructions)
    return c


def compile_one(nvcc, arch, source, include, work, cuobjdump=None):
    """Compiles one source for sm_<arch> to a cubin; returns (source, ptxas text, ptx
    text, SASS text or None without cuobjdump). Raises RuntimeError with nvcc's or
    cuobjdump's output when either fails."""
    stem = os.path.splitext(os.path.basename(source))[0]
    keep = os.path.join(work, stem)
    os.makedirs(keep)
    cmd = [nvcc, *FLAGS, "-arch=sm_" + arch, "-cubin", "--resource-usage", "--keep",
           "--keep-dir", keep, "-I", include, "-o", os.path.join(keep, stem + ".cubin"), source]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(" ".join(cmd) + "\n" + run.stdout + run.stderr)
    ptx = [f for f in os.listdir(keep) if f.endswith(".ptx")]
    ptx_text = ""
    for f in ptx:
        with open(os.path.join(keep, f)) as fh:
            ptx_text += fh.read()
    sass_text = None
    if cuobjdump:
        dump = subprocess.run([cuobjdump, "-sass", os.path.join(keep, stem + ".cubin")],
                              capture_output=True, text=True)
        if dump.returncode != 0:
            raise RuntimeError(f"{cuobjdump} -sass {stem}.cubin\n{dump.stdout}{dump.stderr}")
        sass_text = dump.stdout
    return source, run.stdout + run.stderr, ptx_text, sass_text


def collect(nvcc, arch, sources, include, jobs, cuobjdump=None):
    """The kernel records of every source, in file order, then in ptxas's order."""
    records = []
    with tempfile.TemporaryDirectory(prefix="kernel_resources.") as work:
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(
                lambda s: compile_one(nvcc, arch, s, include, work, cuobjdump), sources))
    for source, ptxas_text, ptx_text, sass_text in results:
        kernels = parse_ptxas(ptxas_text)
        declared = parse_ptx(ptx_text)
        sass = parse_sass(sass_text) if sass_text is not None else {}
        names = demangle(list(kernels))
        for mangled, k in kernels.items():
            k["file"] = os.path.relpath(source, ROOT)
            k["kernel"] = short_name(names[mangled])
            k.update(declared.get(mangled, {"max_threads": None, "min_blocks": None,
                                            "dynamic_shared": False}))
            if k["max_threads"]:
                k.update(occupancy(k.get("registers", 0), k["max_threads"],
                                   k.get("shared_static_bytes", 0)))
            if sass_text is not None:
                k["sass"] = sass_census(sass.get(mangled, []))
            records.append(k)
    return records


def budget_problems(records, budget):
    """What the records break of the budget's rules: no stack frame or spill unless an
    `allow` entry names the kernel (and then no more than it allows), and shared memory
    that leaves room for the declared minimum of resident blocks."""
    entries = budget.get("allow", [])
    # By the short name, or by the mangled one where c++filt is missing (the GPU machine
    # may have no binutils) and the short name is the mangled name.
    allow = {a["kernel"]: a for a in entries}
    allow.update({a["mangled"]: a for a in entries if "mangled" in a})
    problems, used = [], set()
    for k in records:
        name = k["kernel"]
        a = allow.get(name) or allow.get(k.get("mangled", ""))
        for key in ("stack_frame_bytes", "spill_store_bytes", "spill_load_bytes"):
            limit = a.get(key, 0) if a else 0
            if k.get(key, 0) > limit:
                problems.append(f"{name} ({k['file']}): {k[key]} {key.replace('_', ' ')}"
                                f" (allowed: {limit})")
            if a and k.get(key, 0) > 0:
                used.add(a["kernel"])
        if k.get("min_blocks") and k.get("blocks_per_sm", k["min_blocks"]) < k["min_blocks"]:
            problems.append(f"{name} ({k['file']}): declares {k['min_blocks']} resident blocks"
                            f" per SM, but {', '.join(k['limited_by'])} allow only"
                            f" {k['blocks_per_sm']}")
    stale = sorted({a["kernel"] for a in entries} - used)
    return problems, stale


def census_value(sass, key):
    """A census figure by name; "main_loop.X" reads the main loop's (0 without one)."""
    value = sass
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value or 0


def sass_problems(records, budget):
    """What the records break of the budget's `sass_rules`: each rule names the kernels it
    holds (`match`, a regular expression searched in the short name) and the census
    figures they may not exceed (`max`) or must reach (`min`), "main_loop.X" for the
    main loop's. Kernels without a census (no cuobjdump) are not judged."""
    problems = []
    for rule in budget.get("sass_rules", []):
        pattern = re.compile(rule["match"])
        for k in records:
            if "sass" not in k or not pattern.search(k["kernel"]):
                continue
            for bound, limits in (("at most", rule.get("max", {})),
                                  ("at least", rule.get("min", {}))):
                for key, limit in limits.items():
                    value = census_value(k["sass"], key)
                    if (value > limit) if bound == "at most" else (value < limit):
                        problems.append(f"{k['kernel']} ({k['file']}): {key} {value}, {bound} "
                                        f"{limit}: {rule.get('why', '')}")
    return problems


def table(records):
    sass = any("sass" in k for k in records)
    head = f"{'kernel':<74} {'regs':>4} {'smem':>6} {'frame':>5} {'spill':>5} {'threads':>7} " \
           f"{'blocks':>6} {'occ':>5}" + (f" {'ffma':>5} {'hmma':>4} {'loop m/lds':>10}"
                                           if sass else "")
    lines = [head, "-" * len(head)]
    for k in records:
        name = k["kernel"] if len(k["kernel"]) <= 74 else k["kernel"][:71] + "..."
        smem = str(k.get("shared_static_bytes", 0)) + ("+d" if k.get("dynamic_shared") else "")
        occ = f"{k['occupancy']:.2f}" if "occupancy" in k else "-"
        lines.append(f"{name:<74} {k.get('registers', 0):>4} {smem:>6} "
                     f"{k.get('stack_frame_bytes', 0):>5} {k.get('spill_store_bytes', 0):>5} "
                     f"{k['max_threads'] or '-':>7} {k.get('blocks_per_sm', '-'):>6} {occ:>5}" +
                     (f" {k['sass']['ffma']:>5} {k['sass']['hmma']:>4} "
                      f"{census_value(k['sass'], 'main_loop.math_per_shared_load') or '-':>10}"
                      if "sass" in k else ""))
    return "\n".join(lines)


# Where nvcc is looked for after --nvcc, $CUDACXX and the PATH.
FALLBACK_NVCC = ("/usr/local/cuda/bin/nvcc",)


def find_nvcc(given):
    for candidate in (given, os.environ.get("CUDACXX"), shutil.which("nvcc"), *FALLBACK_NVCC):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


# Where scripts/sass_tools.sh puts the cuobjdump it fetches (with nvdisasm beside it).
FETCHED_CUOBJDUMP = os.path.join(ROOT, ".tools", "sass", "bin", "cuobjdump")


def find_cuobjdump(given, nvcc):
    """cuobjdump: --cuobjdump, $CUOBJDUMP, beside nvcc, on the PATH, or the one
    scripts/sass_tools.sh fetched; None without any."""
    for candidate in (given, os.environ.get("CUOBJDUMP"),
                      os.path.join(os.path.dirname(nvcc), "cuobjdump"), shutil.which("cuobjdump"),
                      FETCHED_CUOBJDUMP):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def git_commit():
    run = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else ""


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nvcc", help="the CUDA compiler (default: $CUDACXX, PATH, /usr/local/cuda)")
    p.add_argument("--cuobjdump", help="for the SASS census (default: $CUOBJDUMP, beside nvcc, "
                   "PATH, .tools/sass/bin from scripts/sass_tools.sh; without one there is none)")
    p.add_argument("--arch", default="90", help="the SM to compile for, as in sm_90 (default 90)")
    p.add_argument("--sources", default=os.path.join(ROOT, "kernels", "src"),
                   help="the folder of .cu files (default kernels/src)")
    p.add_argument("--json", help="write the records here (atomically)")
    p.add_argument("--budget", help="fail on what this budget file does not allow")
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    p.add_argument("--quiet", action="store_true", help="no table on stdout")
    args = p.parse_args(argv)

    nvcc = find_nvcc(args.nvcc)
    if not nvcc:
        print("kernel_resources: no nvcc found (give --nvcc, set CUDACXX, or put it on PATH)",
              file=sys.stderr)
        return 2
    if args.arch != "90":
        print(f"kernel_resources: occupancy is computed for sm_90's limits; sm_{args.arch}'s "
              "may differ", file=sys.stderr)
    sources = sorted(os.path.join(args.sources, f) for f in os.listdir(args.sources)
                     if f.endswith(".cu"))
    include = os.path.join(os.path.dirname(os.path.abspath(args.sources)), "include")
    cuobjdump = find_cuobjdump(args.cuobjdump, nvcc)
    if args.cuobjdump and not cuobjdump:
        print(f"kernel_resources: no cuobjdump at {args.cuobjdump}", file=sys.stderr)
        return 2
    try:
        records = collect(nvcc, args.arch, sources, include, max(args.jobs, 1), cuobjdump)
    except RuntimeError as e:
        print(f"kernel_resources: a kernel source does not compile or disassemble:\n{e}",
              file=sys.stderr)
        return 2
    if not records:
        print(f"kernel_resources: no kernel found in {args.sources}", file=sys.stderr)
        return 2
    if not args.quiet:
        print(table(records))
    if args.json:
        write_json(args.json, {
            "commit": git_commit(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "nvcc": nvcc_release(nvcc),
            "arch": "sm_" + args.arch,
            "flags": FLAGS,
            "cuobjdump": cuobjdump,
            # The same "release X.Y" line as nvcc's.
            "cuobjdump_release": nvcc_release(cuobjdump) if cuobjdump else None,
            "sm_limits": SM90,
            "kernels": records,
        })
    if args.budget:
        with open(args.budget) as f:
            budget = json.load(f)
        problems, stale = budget_problems(records, budget)
        problems += sass_problems(records, budget)
        if budget.get("sass_rules") and not cuobjdump:
            print("kernel_resources: note: no cuobjdump, so the budget's SASS rules were not "
                  "checked (scripts/sass_tools.sh fetches one)", file=sys.stderr)
        for name in stale:
            print(f"kernel_resources: note: the budget allows {name} a stack frame or spills "
                  "it no longer has", file=sys.stderr)
        if problems:
            print("kernel_resources: over budget (" + args.budget + "):\n  " +
                  "\n  ".join(problems), file=sys.stderr)
            return 1
        print(f"kernel_resources: {len(records)} kernels within {os.path.basename(args.budget)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
