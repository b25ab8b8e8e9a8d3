"""The aarch64 kernel tiers (runtimes/kernels/neon) are bit-exact with the reference tier and the numpy
mirror under qemu-aarch64, on a core with SDOT (cortex-a76), one without (cortex-a53: the dotprod tier
must refuse itself, never SIGILL) and qemu's max core (SDOT and SMMLA: the i8mm tier's GEMM kernels;
the cortex-a76 and a53 must refuse that tier). Also deterministic cost guards: executed instructions
per weight of the dotprod T2 and Q4 mat-vec kernels and of the i8mm GEMM kernels (qemu's insn plugin),
so a fast path that silently falls back to a slower kernel fails the suite."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
from kernel_cases import ACC_ROW, FMT_INDEX, Case, case_inputs, cases

from edgeq.formats.packed import to_rows4
from edgeq.runner.deploy import insn_plugin
from edgeq.runtime import RUNTIME_DIR

HERE = Path(__file__).resolve().parent
CC = "aarch64-linux-gnu-gcc"
ARM_TIERS = {"ref": 0, "neon": 3, "neon_dotprod": 4, "neon_i8mm": 5}  # kernel_shim.c tier indices
NAME_BYTES = 64

pytestmark = pytest.mark.skipif(not (shutil.which(CC) and shutil.which("qemu-aarch64")),
                                reason="needs aarch64-linux-gnu-gcc and qemu-aarch64 (tools/bootstrap.sh installs them)")


def build_cli(out: Path, extra: list[str] = ()) -> Path:
    exe = out / "kernel_cli"
    cmd = ["make", "-s", "-C", str(RUNTIME_DIR), f"BUILD={out}", f"CC={CC}", "ARCH=aarch64", "TARGET_LDFLAGS=-static",
           *extra, str(exe)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=600)
    return exe


@pytest.fixture(scope="module")
def cli(tmp_path_factory) -> Path:
    return build_cli(tmp_path_factory.mktemp("arm"))


def record(tier: int, case: Case, d) -> bytes:
    """One kernel_cli record (tests/c/kernel_cli.c)."""
    p = d.p
    zeros = b"" if p.zeros is None else np.ascontiguousarray(p.zeros).tobytes()
    scales, x, acc = d.scales.tobytes(), np.ascontiguousarray(d.x).tobytes(), d.acc.tobytes()
    r0, r1 = (0, case.rows) if case.xnor else (case.r0, case.r1)
    head = struct.pack("<15i", int(case.xnor), tier, FMT_INDEX[case.fmt], case.acc, case.block, case.rows, case.cols,
                       p.codes.shape[1], case.n, r0, r1, len(zeros), len(scales), len(x), len(acc))
    return head + np.ascontiguousarray(p.codes).tobytes() + scales + zeros + x + acc


def record_rows4(tier: int, case: Case, d) -> bytes:
    """A kernel_cli record of the same weights stored in LAYOUT_ROWS4 (kind 3): the tier's rows4 kernels."""
    p = d.p
    codes = to_rows4(np.ascontiguousarray(p.codes), 4)
    scales = to_rows4(np.ascontiguousarray(d.scales), 1) if case.acc != ACC_ROW else d.scales
    zeros = b"" if p.zeros is None else to_rows4(np.ascontiguousarray(p.zeros), 1).tobytes()
    x, acc = np.ascontiguousarray(d.x).tobytes(), d.acc.tobytes()
    head = struct.pack("<15i", 3, tier, FMT_INDEX[case.fmt], case.acc, case.block, case.rows, case.cols,
                       p.codes.shape[1], case.n, case.r0, case.r1, len(zeros), scales.nbytes, len(x), len(acc))
    return head + codes.tobytes() + scales.tobytes() + zeros + x + acc


def rows4_cases() -> list[Case]:
    """T2 (row and block scales) and Q4 (every group, with and without zero points) on random shapes: rows
    not a multiple of 4, odd K, row ranges starting and ending inside a group of 4, batches 1..64."""
    rng = np.random.default_rng(11)
    kinds = [("t2", ACC_ROW, 256, False), ("t2", 1, 256, False)]
    kinds += [("q4", 1, g, z) for g in (32, 64, 128) for z in (False, True)]
    out = []
    for fmt, acc, block, zeros in kinds:
        for n in (1, 1, 2, 5, 64):
            rows = int(rng.choice([1, 2, 3, 5, 7, 9, 13, 19, 40]))
            cols = int(rng.choice([1, 31, 255, 257, 300, 777, 1001]))
            r0 = int(rng.integers(0, rows))
            r1 = int(rng.integers(r0 + 1, rows + 1))
            out.append(Case(fmt, acc, block, rows, cols, n, r0, r1, zeros))
    out += [Case("t2", ACC_ROW, 256, 17, 33 * 256 + 5, 1, 0, 17), Case("q4", 1, 32, 9, 4096, 1, 0, 9)]
    return out


def arm_cases() -> list[Case]:
    """Every format x scale kind with odd K, M = 1 rows, batches 1..64 -- a small sample (qemu is slow)."""
    picked = list(cases(seed=3, quick=True))
    picked += [Case("t2", ACC_ROW, 256, 1, 1000, 1, 0, 1), Case("q4", 1, 32, 1, 70, 5, 0, 1),
               Case("t158", 1, 256, 9, 513, 64, 0, 9), Case("i8", ACC_ROW, 16, 13, 1, 64, 0, 13),
               Case("t2", 1, 256, 11, 33 * 256 + 5, 1, 1, 11),  # > 32 blocks: the T2 kernel's batches of blocks
               Case("t2", ACC_ROW, 256, 10, 64, 1, 0, 10), Case("t2", 1, 256, 10, 64, 1, 0, 10)]  # digits CNN head
    return picked


def run_cli(cli: Path, cpu: str, records: bytes, tmp: Path, plugin: Path | None = None) -> tuple[bytes, str]:
    (tmp / "in.bin").write_bytes(records)
    cmd = ["qemu-aarch64", "-cpu", cpu]
    if plugin is not None:
        cmd += ["-plugin", str(plugin), "-d", "plugin"]
    res = subprocess.run(cmd + [str(cli), str(tmp / "in.bin"), str(tmp / "out.bin")], capture_output=True,
                         timeout=600, check=False)
    assert res.returncode == 0, f"kernel_cli under -cpu {cpu} exited {res.returncode}: {res.stderr[-2000:]!r}"
    return (tmp / "out.bin").read_bytes(), res.stderr.decode(errors="replace")


def kernel_prefix(tier: str, case: Case) -> str:
    """The i8mm tier runs the dotprod tier's mat-vec and XNOR kernels and its own GEMM kernels."""
    if tier == "neon_i8mm" and (case.n == 1 or case.xnor):
        return "neon_dotprod/"
    return tier + "/"


@pytest.mark.parametrize("cpu,expect", [("cortex-a76", {"ref", "neon", "neon_dotprod"}),
                                        ("cortex-a53", {"ref", "neon"}),
                                        ("max", {"ref", "neon", "neon_dotprod", "neon_i8mm"})])
def test_arm_kernels_match_reference_and_numpy(cli, tmp_path, cpu, expect):
    jobs, blob = [], b""
    for k, case in enumerate(arm_cases()):
        d = case_inputs(case, seed=100 + k)
        for tier, index in ARM_TIERS.items():
            jobs.append((tier, case, d))
            blob += record(index, case, d)
    out, _ = run_cli(cli, cpu, blob, tmp_path)
    at, seen, checked = 0, set(), 0
    for tier, case, d in jobs:
        name = out[at:at + NAME_BYTES].rstrip(b"\0").decode()
        at += NAME_BYTES
        got = np.frombuffer(out[at:at + d.acc.nbytes], d.acc.dtype).reshape(d.acc.shape)
        at += d.acc.nbytes
        if not name:
            assert tier not in expect or (tier != "ref" and _tier_lacks(tier, case)), f"{tier} missing for {case}"
            continue
        assert name.startswith(kernel_prefix(tier, case)), name
        seen.add(tier)
        np.testing.assert_array_equal(got, d.want, err_msg=f"-cpu {cpu} {name} {case}")
        checked += 1
    assert at == len(out)
    assert seen == expect, f"-cpu {cpu}: tiers that ran {seen}, expected {expect}"
    assert checked > 60


def _tier_lacks(tier: str, case: Case) -> bool:
    """Kernels the NEON tiers do not have (the runtime uses the reference kernel): B1 with block scales."""
    return case.fmt == "b1" and case.acc != ACC_ROW and not case.xnor


def i8mm_cases(seed: int) -> list[Case]:
    """Every format and scale kind the i8mm tier has a GEMM for, on random shapes: odd and block-multiple K
    (I8: 64-column and 16-column blocks), M from 1 up (odd included), batches 2..64 (odd included), row
    ranges that start past 0."""
    rng = np.random.default_rng(seed)
    kinds = [("t2", ACC_ROW, 256, False), ("t2", 1, 256, False), ("t158", ACC_ROW, 256, False), ("t158", 1, 256, False),
             ("b1", ACC_ROW, 64, False), ("i8", ACC_ROW, 16, False), ("i8", 1, 32, False)]
    kinds += [("q4", 1, g, z) for g in (32, 64, 128) for z in (False, True)]
    out = []
    for fmt, acc, block, zeros in kinds:
        for n in (2, 3, int(rng.integers(4, 33)) | 1, 64, int(rng.integers(4, 64))):
            rows = int(rng.choice([1, 2, 3, 7, 13, 21]))
            cols = int(rng.choice([1, 31, 255, 256, 511, 640, 777, 1024]))
            r0 = int(rng.integers(0, rows))
            out.append(Case(fmt, acc, block, rows, cols, n, r0, rows, zeros))
    return out


def test_i8mm_gemm_bit_exact_with_reference_on_random_shapes(cli, tmp_path):
    """The i8mm tier forced under -cpu max (SMMLA) against the reference tier run in the same process and the
    numpy mirror; then the same records on a Cortex-A76 and A53, where the tier must refuse itself."""
    jobs, blob = [], b""
    for k, case in enumerate(i8mm_cases(seed=11)):
        d = case_inputs(case, seed=500 + k)
        jobs.append((case, d))
        blob += record(ARM_TIERS["ref"], case, d) + record(ARM_TIERS["neon_i8mm"], case, d)
    out, _ = run_cli(cli, "max", blob, tmp_path)
    at = 0
    for case, d in jobs:
        got = {}
        for _ in range(2):
            name = out[at:at + NAME_BYTES].rstrip(b"\0").decode()
            got[name.split("/")[0]] = np.frombuffer(out[at + NAME_BYTES:at + NAME_BYTES + d.acc.nbytes], d.acc.dtype)
            at += NAME_BYTES + d.acc.nbytes
        assert set(got) == {"ref", "neon_i8mm"}, f"{case}: kernels {set(got)}"
        np.testing.assert_array_equal(got["neon_i8mm"], got["ref"], err_msg=str(case))
        np.testing.assert_array_equal(got["neon_i8mm"].reshape(d.want.shape), d.want, err_msg=str(case))
    assert at == len(out)
    for cpu in ("cortex-a76", "cortex-a53"):
        out, _ = run_cli(cli, cpu, record(ARM_TIERS["neon_i8mm"], *jobs[0]), tmp_path)
        assert out[:NAME_BYTES] == bytes(NAME_BYTES), f"-cpu {cpu} offered the i8mm tier"


@pytest.mark.parametrize("cpu,has_rows4", [("cortex-a76", True), ("cortex-a53", False), ("max", True)])
def test_rows4_kernels_match_reference(cli, tmp_path, cpu, has_rows4):
    """The dotprod tier's ROWS4 kernels give the row-major reference's bits; no other tier offers them (the
    runtime then repacks to row-major at load): not the NEON tier, nor the i8mm one (SMMLA reads row-major)."""
    jobs, blob = [], b""
    for k, case in enumerate(rows4_cases()):
        d = case_inputs(case, seed=200 + k)
        d.want[:, case.r1:] = -7  # rows_cases end inside the matrix: rows past r1 stay untouched too
        for tier in ("neon", "neon_dotprod", "neon_i8mm"):
            jobs.append((tier, case, d))
            blob += record_rows4(ARM_TIERS[tier], case, d)
    out, _ = run_cli(cli, cpu, blob, tmp_path)
    at, checked = 0, 0
    for tier, case, d in jobs:
        name = out[at:at + NAME_BYTES].rstrip(b"\0").decode()
        at += NAME_BYTES
        got = np.frombuffer(out[at:at + d.acc.nbytes], d.acc.dtype).reshape(d.acc.shape)
        at += d.acc.nbytes
        if tier != "neon_dotprod" or not has_rows4:
            assert not name, f"-cpu {cpu}: {tier} offered {name} for ROWS4 weights"
            continue
        assert name.startswith(f"neon_dotprod/{case.fmt}_rows4_"), name
        np.testing.assert_array_equal(got, d.want, err_msg=f"-cpu {cpu} {name} {case}")
        checked += 1
    assert at == len(out)
    assert checked == (len(rows4_cases()) if has_rows4 else 0)


# Executed instructions per weight, 1024 x 4096 mat-vec, dotprod tier: row-major and ROWS4 weights.
GUARD = {("t2", False): 0.45, ("q4", False): 0.9, ("t2", True): 0.2, ("q4", True): 0.3}


@pytest.mark.skipif(insn_plugin() is None, reason="qemu insn plugin not built (tools/build_qemu_plugin.sh)")
@pytest.mark.parametrize("fmt,rows4", list(GUARD))
def test_dotprod_matvec_instruction_guard(cli, tmp_path, fmt, rows4):
    """Instructions per weight, set-up cancelled by differencing 1 and 3 calls: deterministic, so loose
    bounds catch a silent fallback to the reference kernel (which costs several per weight)."""
    case = Case(fmt, 1, 256 if fmt == "t2" else 32, 1024, 4096, 1, 0, 1024)
    d = case_inputs(case, seed=7)
    rec = (record_rows4 if rows4 else record)(ARM_TIERS["neon_dotprod"], case, d)
    totals = []
    for reps in (1, 3):
        out, err = run_cli(cli, "cortex-a76", rec * reps, tmp_path, insn_plugin())
        want = f"neon_dotprod/{fmt}_rows4_block_matvec" if rows4 else f"neon_dotprod/{fmt}_block_matvec"
        assert out[:NAME_BYTES].rstrip(b"\0").decode() == want
        totals.append(int(re.findall(r"total insns: (\d+)", err)[-1]))
    per_weight = (totals[1] - totals[0]) / 2 / (1024 * 4096)
    print(f"{fmt} rows4={rows4}: {per_weight:.4f} executed instructions per weight (emulated)")
    assert per_weight <= GUARD[fmt, rows4], f"{fmt}: {per_weight:.3f} executed instructions per weight"


GEMM_GUARD = {"t2": 0.13, "q4": 0.22, "i8": 0.1}  # i8mm GEMM, 256 x 4096, batch 8 (dotprod: 0.17, 0.30, 0.38)


@pytest.mark.skipif(insn_plugin() is None, reason="qemu insn plugin not built (tools/build_qemu_plugin.sh)")
@pytest.mark.parametrize("fmt", ["t2", "q4", "i8"])
def test_i8mm_gemm_instruction_guard(cli, tmp_path, fmt):
    """Executed instructions per weight per activation row of the i8mm GEMM, batch 8 under -cpu max: loose
    bounds below the dotprod GEMM's, so a silent fallback to it (or to the reference kernel) fails."""
    acc, block = {"t2": (ACC_ROW, 256), "q4": (1, 32), "i8": (ACC_ROW, 16)}[fmt]
    case = Case(fmt, acc, block, 256, 4096, 8, 0, 256)
    d = case_inputs(case, seed=7)
    rec = record(ARM_TIERS["neon_i8mm"], case, d)
    totals = []
    for reps in (1, 3):
        out, err = run_cli(cli, "max", rec * reps, tmp_path, insn_plugin())
        assert out[:NAME_BYTES].rstrip(b"\0").decode() == f"neon_i8mm/{fmt}_{'row' if acc == ACC_ROW else 'block'}_gemm"
        totals.append(int(re.findall(r"total insns: (\d+)", err)[-1]))
    per_weight = (totals[1] - totals[0]) / 2 / (256 * 4096 * 8)
    assert per_weight <= GEMM_GUARD[fmt], f"{fmt}: {per_weight:.3f} executed instructions per weight per row"


@pytest.fixture(scope="module")
def arm_runner(cli) -> Path:
    """The aarch64 edgeq_runner, built in the kernel program's build directory (plain armv8-a + dotprod objects)."""
    out = cli.parent
    subprocess.run(["make", "-s", "-C", str(RUNTIME_DIR), f"BUILD={out}", f"CC={CC}", "ARCH=aarch64",
                    "TARGET_LDFLAGS=-static", str(out / "edgeq_runner")], check=True, capture_output=True, timeout=600)
    return out / "edgeq_runner"


@pytest.mark.parametrize("cpu,tier,batches", [("cortex-a76", "neon_dotprod", (70, 1)), ("cortex-a53", "neon", (70, 1)),
                                              ("max", "neon_i8mm", (70, 65, 1))])
def test_arm_runtime_all_ops_bit_exact_with_reference(arm_runner, tmp_path, cpu, tier, batches):
    """Every op, format and scale kind through the whole runtime (2 threads, a batch of 70: kernel tiles of
    64 + 6 rows; on -cpu max also 65: 64 + 1, a mat-vec after an i8mm GEMM; then one sample in the same
    70-sample arena, the mat-vec kernels in scratch planned for the largest tile), with the tier the
    runtime picks by itself on each core (AUTO: i8mm on max, dotprod on the A76, NEON on the A53), against
    the numpy executor. The i8mm tier runs the dotprod tier's mat-vec kernels."""
    import json

    import runtime_graphs as RG

    from edgeq.blob import write_blob

    for k, (fmt, kind, block, zeros), samples in ((k, c, n) for k, c in enumerate(RG.CONFIGS) for n in batches):
        g = RG.all_ops_graph(k, fmt, kind, block, zeros)
        write_blob(g, tmp_path / "g.edgeq")
        x = np.random.default_rng(k).normal(0, 1.5, (70, 7, 6, 3)).astype(np.float32)[:samples]
        (tmp_path / "x.bin").write_bytes(x.tobytes())
        res = subprocess.run(["qemu-aarch64", "-cpu", cpu, str(arm_runner), str(tmp_path / "g.edgeq"), "--input",
                              str(tmp_path / "x.bin"), "--batch", "70", "--outputs", str(tmp_path), "--threads", "2",
                              "--runs", "1", "--warmup", "0", "--no-tests"], capture_output=True, text=True,
                             timeout=600, check=False)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        report = json.loads(res.stdout)
        assert report["kernel_tier"] == tier
        kernels = [x["kernel"] for x in report["layers"]]
        sdot = ("neon_dotprod/",) if tier == "neon_i8mm" else ()
        main_tier = "neon_dotprod" if tier == "neon_i8mm" and samples == 1 else tier
        assert any(k.startswith(main_tier + "/") for k in kernels), kernels
        assert all(k.startswith((tier + "/", "ref", *sdot)) for k in kernels), kernels
        assert_runner_outputs(g, x, tmp_path, f"{cpu} {fmt} kind {kind} batch {samples}")


def ternary_inputs(case: Case, seed: int):
    """case_inputs with every T2 code 3 (value 2, which no packer writes) turned into 2: the weights the
    lookup-table kernel accepts (T158 bytes always decode to trits)."""
    from kernel_cases import expected

    d = case_inputs(case, seed)
    if case.fmt == "t2":
        both = d.p.codes & (d.p.codes >> 1) & 0x55
        d.p.codes[...] = d.p.codes ^ both
        d.want = expected(d.p, d.x)
        d.want[:, : case.r0] = -7
    return d


def lut_cases() -> list[Case]:
    """T2/T158 x row/block scales, odd K (1 .. 3 blocks + a partial one), M = 1 .. 65, rows [r0, r1) not
    multiples of the kernel's 8-row tiles."""
    rng = np.random.default_rng(11)
    picked = []
    for fmt in ("t2", "t158"):
        for acc in (ACC_ROW, 1):
            for rows in (1, 7, 8, 19, 33, 65):
                cols = int(rng.choice([1, 3, 100, 255, 257, 513, 777]))
                r0 = int(rng.integers(0, rows))
                picked.append(Case(fmt, acc, 256, rows, cols, 1, r0, rows))
    return picked


@pytest.mark.parametrize("cpu", ["cortex-a76", "cortex-a53"])
def test_arm_lut_matvec_matches_reference(cli, tmp_path, cpu):
    """The lookup-table kernel of each NEON tier (pack + table build + lookups) against the numpy mirror; the
    dotprod tier's only on cortex-a76. T2 code 3 makes pack() refuse (the runtime then keeps SDOT)."""
    tiers = {"neon": 3} | ({"neon_dotprod": 4} if cpu == "cortex-a76" else {})
    jobs, blob = [], b""
    for k, case in enumerate(lut_cases()):
        d = ternary_inputs(case, seed=200 + k)
        for tier, index in tiers.items():
            jobs.append((tier, case, d))
            blob += struct.pack("<i", 2) + record(index, case, d)[4:]
    raw = case_inputs(Case("t2", ACC_ROW, 256, 9, 300, 1, 0, 9), seed=5)  # random bits: codes 3 present
    assert (raw.p.codes & (raw.p.codes >> 1) & 0x55).any()
    blob += struct.pack("<i", 2) + record(3, Case("t2", ACC_ROW, 256, 9, 300, 1, 0, 9), raw)[4:]
    out, _ = run_cli(cli, cpu, blob, tmp_path)
    at = 0
    for tier, case, d in jobs:
        name = out[at:at + NAME_BYTES].rstrip(b"\0").decode()
        at += NAME_BYTES
        got = np.frombuffer(out[at:at + d.acc.nbytes], d.acc.dtype).reshape(d.acc.shape)
        at += d.acc.nbytes
        kind = "row" if case.acc == ACC_ROW else "block"
        assert name == f"{tier}/{case.fmt}_lut_{kind}_matvec", name
        np.testing.assert_array_equal(got, d.want, err_msg=f"-cpu {cpu} {name} {case}")
    assert out[at:at + NAME_BYTES].rstrip(b"\0") == b"", "pack() must refuse T2 code 3"


def assert_runner_outputs(g, x: np.ndarray, out: Path, what: str) -> None:
    """The runner's out<i>.bin files equal the numpy executor's outputs (a final softmax within 1e-6: expf)."""
    from edgeq import reference
    from edgeq.blob import layout as L

    for i, w in enumerate(reference.run(g, [x])):
        w = np.asarray(w)
        got = np.frombuffer((out / f"out{i}.bin").read_bytes(), w.dtype).reshape(w.shape)
        if i == 0 and g.ops[-1].op == L.OP_SOFTMAX:
            np.testing.assert_allclose(got, w, rtol=0, atol=1e-6)
        else:
            np.testing.assert_array_equal(got, w, err_msg=f"{what} output {i}")


def run_runner(runner: Path, cpu: str, blob: Path, x: np.ndarray, batch: int, out: Path) -> list[str]:
    """Runs the aarch64 edgeq_runner on `x`; returns the kernel each op reported."""
    import json

    (out / "x.bin").write_bytes(x.tobytes())
    res = subprocess.run(["qemu-aarch64", "-cpu", cpu, str(runner), str(blob), "--input", str(out / "x.bin"),
                          "--batch", str(batch), "--outputs", str(out), "--threads", "2", "--runs", "1", "--warmup",
                          "0", "--no-tests"], capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return [x["kernel"] for x in json.loads(res.stdout)["layers"]]


@pytest.mark.parametrize("cpu,tier", [("cortex-a76", "neon_dotprod"), ("cortex-a53", "neon"),
                                      ("max", "neon_dotprod")])  # max: the i8mm tier, whose mat-vec is SDOT's
def test_arm_runtime_lut_hint_bit_exact(arm_runner, tmp_path, cpu, tier):
    """Every weighted op of the T2/T158 graphs with the lookup-table hint (EDGEQ_OPF_LUT): weights repacked at
    load, the LUT kernel runs for single rows (the report names it), the dot kernels for batches -- all equal
    to the numpy executor. The same runner binary runs the hint-free blobs with its dot kernels."""
    import runtime_graphs as RG

    from edgeq.blob import write_blob

    for k, (fmt, kind, block, zeros) in enumerate(RG.CONFIGS):
        if fmt not in ("t2", "t158"):
            continue
        g = RG.all_ops_graph(k, fmt, kind, block, zeros)
        weighted = [op for op in g.ops if op.op in (RG.L.OP_LINEAR, RG.L.OP_CONV2D, RG.L.OP_DWCONV2D)]
        for op in weighted:
            op.flags = RG.L.OPF_LUT
        write_blob(g, tmp_path / "g.edgeq")
        for samples in (1, 3):
            x = np.random.default_rng(k).normal(0, 1.5, (samples, 7, 6, 3)).astype(np.float32)
            kernels = run_runner(arm_runner, cpu, tmp_path / "g.edgeq", x, samples, tmp_path)
            lut = [kn for kn in kernels if "_lut_" in kn]
            assert all(kn.startswith((f"{tier}/t2_lut_", f"{tier}/t158_lut_")) for kn in lut), kernels
            assert bool(lut) == (samples == 1), kernels  # batch 1 LINEAR: one activation row
            assert_runner_outputs(g, x, tmp_path, f"{cpu} {fmt} kind {kind} batch {samples}")


LUT_GUARD = 0.2  # executed instructions per weight, 1024 x 4096, lookups + table build (measured ~0.15)


@pytest.mark.skipif(insn_plugin() is None, reason="qemu insn plugin not built (tools/build_qemu_plugin.sh)")
def test_lut_matvec_instruction_guard(cli, tmp_path):
    """The lookup-table kernel per call (tables + lookups; the load-time pack cancels: 1 vs 3 calls after
    one pack), on the ARMv8.0 tier -- it needs no SDOT, so the A53-class tier gets the same count."""
    case = Case("t158", 1, 256, 1024, 4096, 1, 0, 1024)
    d = ternary_inputs(case, seed=7)
    totals = []
    for calls in (1, 3):
        rec = record(ARM_TIERS["neon"], case, d)
        rec = struct.pack("<i", 2) + rec[4:32] + struct.pack("<i", calls) + rec[36:]  # header[8]: calls
        out, err = run_cli(cli, "cortex-a53", rec, tmp_path, insn_plugin())
        assert out[:NAME_BYTES].rstrip(b"\0").decode() == "neon/t158_lut_block_matvec"
        totals.append(int(re.findall(r"total insns: (\d+)", err)[-1]))
    per_weight = (totals[1] - totals[0]) / 2 / (1024 * 4096)
    assert per_weight <= LUT_GUARD, f"lookup-table kernel: {per_weight:.3f} executed instructions per weight"


@pytest.mark.parametrize("cpu,tier", [("cortex-a76", "neon_dotprod"), ("cortex-a53", "neon")])
def test_arm_runtime_rows4_blob_bit_exact(arm_runner, tmp_path, cpu, tier):
    """A blob with ROWS4 T2/Q4 weights through the aarch64 runtime: with SDOT the rows4 kernels read it in
    place, without it the runtime repacks to row-major at load; both give the numpy executor's bits."""
    import json

    import runtime_graphs as RG

    from edgeq import reference
    from edgeq.blob import write_blob

    for k, (fmt, kind, block, zeros) in enumerate(RG.CONFIGS):
        if fmt not in ("t2", "q4"):
            continue
        g = RG.with_rows4(RG.all_ops_graph(40 + k, fmt, kind, block, zeros))
        write_blob(g, tmp_path / "g.edgeq")
        x = np.random.default_rng(k).normal(0, 1.5, (70, 7, 6, 3)).astype(np.float32)
        for samples in (70, 1):
            (tmp_path / "x.bin").write_bytes(x[:samples].tobytes())
            res = subprocess.run(["qemu-aarch64", "-cpu", cpu, str(arm_runner), str(tmp_path / "g.edgeq"), "--input",
                                  str(tmp_path / "x.bin"), "--batch", "70", "--outputs", str(tmp_path), "--threads",
                                  "2", "--runs", "1", "--warmup", "0", "--no-tests"], capture_output=True, text=True,
                                 timeout=600, check=False)
            assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
            kernels = [x["kernel"] for x in json.loads(res.stdout)["layers"]]
            rows4 = [k for k in kernels if f"{fmt}_rows4_" in k]
            assert bool(rows4) == (tier == "neon_dotprod"), kernels
            assert all(k.startswith((tier + "/", "ref")) for k in kernels), kernels
            for i, w in enumerate(reference.run(g, [x[:samples]])):
                w = np.asarray(w)
                got = np.frombuffer((tmp_path / f"out{i}.bin").read_bytes(), w.dtype).reshape(w.shape)
                if i == 0 and g.ops[-1].op == RG.L.OP_SOFTMAX:
                    np.testing.assert_allclose(got, w, rtol=0, atol=1e-6)
                else:
                    np.testing.assert_array_equal(got, w, err_msg=f"{cpu} {fmt} kind {kind} batch {samples} output {i}")


def test_arm_runtime_rows4_blob_with_lut_hint_bit_exact(arm_runner, tmp_path):
    """ROWS4 T2 weights of ops hinted to the lookup-table kernel: the runtime makes them row-major before the
    LUT pack (which reads row-major codes), so one-row calls run the LUT kernel and give the numpy bits."""
    import runtime_graphs as RG

    from edgeq.blob import write_blob

    for k, (fmt, kind, block, zeros) in enumerate(RG.CONFIGS):
        if fmt != "t2":
            continue
        g = RG.all_ops_graph(60 + k, fmt, kind, block, zeros)
        for op in g.ops:
            if op.op in (RG.L.OP_LINEAR, RG.L.OP_CONV2D, RG.L.OP_DWCONV2D):
                op.flags = RG.L.OPF_LUT
        write_blob(RG.with_rows4(g), tmp_path / "g.edgeq")
        x = np.random.default_rng(k).normal(0, 1.5, (1, 7, 6, 3)).astype(np.float32)
        kernels = run_runner(arm_runner, "cortex-a76", tmp_path / "g.edgeq", x, 1, tmp_path)
        assert any("_lut_" in kn for kn in kernels), kernels
        assert_runner_outputs(g, x, tmp_path, f"t2 kind {kind}")
