"""Soak test of the serial protocol: N complete deploys to an emulated board through a link that drops and
corrupts bytes (edgeq.testing.faulty_link; 0.2 % + 0.2 % each direction by default, seeded per deploy).

Each deploy boots a fresh qemu-system-arm with the upload firmware, then HELLO -> LOAD -> VERIFY -> the
bundled inputs one by one -> timed RUN, and checks every output against the host reference bundled in
the blob. A run counts as a run of an unverified blob when its RESULT names a blob CRC other than the
blob sent (the device reports the CRC its VERIFY computed); that count must be 0.

    .venv/bin/python benchmarks/soak_serial.py [--deploys 200] [--target stm32h7] [--drop 0.002] [--corrupt 0.002]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.build.firmware import build_firmware
from edgeq.errors import EdgeqError
from edgeq.runner import mcu_protocol as P
from edgeq.runner.mcu_deploy import load_and_verify, run_bundled
from edgeq.runner.transports.qemu_system import QemuSystemBoard
from edgeq.runner.transports.stream import open_stream
from edgeq.targets import get_target
from edgeq.testing.faulty_link import FaultyLink

sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_mcu import pack  # the sibling script's digits packer


def one_deploy(target, image: Path, blob: bytes, refs: np.ndarray, out_fmt: int, seed: int, args) -> dict:
    """One deploy through a fresh faulty link; what happened, for the summary."""
    t0 = time.monotonic()
    board = QemuSystemBoard(target.connect, image).start(connect=False)
    crc = zlib.crc32(blob)
    row = {"ok": False, "resends": 0, "unverified_runs": 0, "error": ""}
    try:
        with FaultyLink(("127.0.0.1", board.port), drop=args.drop, corrupt=args.corrupt, seed=seed) as link:
            c = P.Client(open_stream(link.url), chunk=args.chunk)
            try:
                c.hello()
                verified, _ = load_and_verify(c, blob, "upload", lambda s: None)
                outs = run_bundled(c, verified, out_fmt)
                result = c.run(1, 8, P.RUN_FROM_BUNDLED, 0)
                row["unverified_runs"] = int(result.blob_crc != crc) * len(result.ticks)
                row["ok"] = bool(np.array_equal(np.asarray(outs, np.float32).reshape(refs.shape), refs)) \
                    and result.blob_crc == crc
                if not row["ok"] and not row["unverified_runs"]:
                    row["error"] = "outputs differ from the reference"
            except EdgeqError as e:
                row["error"] = str(e)
            finally:
                row["resends"] = c.stats.resends
                c.stream.close()
            row["damaged_bytes"] = sum(d.dropped + d.corrupted for d in (link.to_device, link.to_host))
    finally:
        board.close()
    row["seconds"] = time.monotonic() - t0
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--deploys", type=int, default=200)
    ap.add_argument("--target", default="stm32h7")
    ap.add_argument("--format", default="t2", choices=("t2", "q4"))
    ap.add_argument("--drop", type=float, default=0.002)
    ap.add_argument("--corrupt", type=float, default=0.002)
    ap.add_argument("--chunk", type=int, default=P.DEFAULT_CHUNK)
    ap.add_argument("--seed", type=int, default=0, help="first link seed; deploy k uses seed + k")
    args = ap.parse_args()
    target = get_target(args.target)
    image = build_firmware(target).elf
    with tempfile.TemporaryDirectory() as tmp:
        path = pack(args.format, Path(tmp) / "mlp.edgeq", tests=16)
        blob = path.read_bytes()
        g = read_blob(path).graph
    refs = np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_OUTPUT)[0]].array, np.float32)
    out_fmt = g.tensors[g.outputs[0]].format
    rows = []
    for k in range(args.deploys):
        rows.append(one_deploy(target, image, blob, refs, out_fmt, args.seed + k, args))
        r = rows[-1]
        print(f"deploy {k + 1:4d}/{args.deploys}: {'ok  ' if r['ok'] else 'FAIL'} {r['seconds']:.2f} s, "
              f"{r['resends']} resends, {r.get('damaged_bytes', 0)} damaged bytes {r['error']}", flush=True)
    ok = [r for r in rows if r["ok"]]
    print(f"\n{args.target} ({target.section('emulator')['machine']}), {len(blob)} B blob ({args.format}), "
          f"drop {args.drop:.2%} + corrupt {args.corrupt:.2%} per byte each direction, chunk {args.chunk} B")
    print(f"successful deploys:        {len(ok)} / {len(rows)}")
    print(f"mean resends per deploy:   {statistics.mean(r['resends'] for r in rows):.1f}")
    print(f"mean deploy time:          {statistics.mean(r['seconds'] for r in rows):.2f} s (host wall time, "
          f"emulator boot included; max {max(r['seconds'] for r in rows):.2f} s)")
    print(f"runs of unverified blobs:  {sum(r['unverified_runs'] for r in rows)}")


if __name__ == "__main__":
    main()
