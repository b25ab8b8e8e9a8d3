"""Cortex-M kernel tiers vs the reference kernels on the emulated boards: executed instructions per inference
of the digits MLP in each weight format, from the firmware's SysTick under qemu -icount (emulated), and the
board time the latency model makes of them (IPC x clock of the board file: modelled).

Each (board, format, tier) boots the upload firmware (tier "ref": built with TIER=ref), uploads the blob,
verifies it, checks every bundled output against the host reference and times 5 runs.

    .venv/bin/python benchmarks/bench_mcu.py [--targets stm32l4,stm32h7,stm32u5,corstone300] [--formats t2,t158,q4,i8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.build.firmware import build_firmware
from edgeq.runner import mcu_protocol as P
from edgeq.runner.mcu_deploy import ICOUNT_SHIFT, load_and_verify, run_bundled
from edgeq.runner.transports.qemu_system import QemuSystemBoard
from edgeq.targets import get_target, latency


def pack(fmt: str, out: Path, tests: int = 8) -> Path:
    """The digits MLP packed by the CLI, with `tests` bundled inputs for the on-device check."""
    from click.testing import CliRunner

    from edgeq.cli import main

    models = ROOT / "examples" / "digits" / "models"
    res = CliRunner().invoke(main, ["pack", str(models / f"mlp_{fmt}_qat.pt2"), "-f", fmt, "--calib",
                                    str(models / "mlp_data.npz"), "--tests", str(tests), "-o", str(out)])
    if res.exit_code:
        raise SystemExit(res.output)
    return out


def measure(target, image: Path, blob: Path) -> tuple[int, str]:
    """(emulated instructions per inference, kernel of the first weighted layer); outputs checked exactly."""
    data = blob.read_bytes()
    g = read_blob(blob).graph
    refs = np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_OUTPUT)[0]].array, np.float32)
    with QemuSystemBoard(target.connect, image, icount_shift=ICOUNT_SHIFT) as board:
        c = P.Client(board.stream)
        hz = c.hello().ticks_per_second
        verified, _ = load_and_verify(c, data, "upload", lambda s: None)
        outs = np.asarray(run_bundled(c, verified, g.tensors[g.outputs[0]].format), np.float32)
        if not np.array_equal(outs.reshape(refs.shape), refs):
            raise SystemExit(f"{target.id} {blob.name}: outputs differ from the host reference")
        result = c.run(1, 5, P.RUN_FROM_BUNDLED, 0)
        if result.blob_crc != zlib.crc32(data):
            raise SystemExit("the device ran another blob")
        kernel = next(x.kernel for x in c.profile() if x.op == L.OP_LINEAR)
    return round(statistics.median(result.ticks) * 1e9 / (hz * 2 ** ICOUNT_SHIFT)), kernel


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--targets", default="stm32l4,stm32h7,stm32u5,corstone300")
    ap.add_argument("--formats", default="t2,t158,q4,i8")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        blobs = {f: pack(f, Path(tmp) / f"mlp_{f}.edgeq") for f in args.formats.split(",")}
        print("| board (core) | format | ref instructions | tier | tier instructions | speed-up "
              "| modelled ms at the board clock (ref -> tier) |")
        print("|---|---|---|---|---|---|---|")
        for tid in args.targets.split(","):
            t = get_target(tid)
            images = {tier: build_firmware(t, tier=tier).elf for tier in ("ref", "auto")}
            for fmt, blob in blobs.items():
                ref, _ = measure(t, images["ref"], blob)
                fast, kernel = measure(t, images["auto"], blob)
                ms = [latency.from_instructions(t, n) * 1e3 for n in (ref, fast)]
                print(f"| {tid} ({t.cpu['core']}) | {fmt} | {ref:,} | {kernel.split('/')[0]} | {fast:,} "
                      f"| {ref / fast:.1f}x | {ms[0]:.3f} -> {ms[1]:.3f} |", flush=True)
    print("\ninstructions: emulated (SysTick under qemu -icount, 1 ns per instruction); ms: modelled "
          "(board IPC x clock, estimates)")


if __name__ == "__main__":
    main()
