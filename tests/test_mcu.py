"""Microcontroller firmware end to end on qemu-system-arm: the digits MLP on emulated Cortex-M4/M7/M55
boards bit-exact with edgeq.reference, the serial protocol under garbage and under a link that drops and
corrupts 0.2 % + 0.2 % of bytes, verification before any run, and the fit check before any flashing."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DIGITS_MODELS
from tamper import sections, tampered

from edgeq import reference
from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.build.firmware import build_firmware
from edgeq.cli import main
from edgeq.errors import DeviceError
from edgeq.runner import mcu_protocol as P
from edgeq.runner.mcu_deploy import Options, deploy_mcu
from edgeq.runner.transports.qemu_system import QemuSystemBoard
from edgeq.runner.transports.stream import open_stream
from edgeq.targets import get_target
from edgeq.testing.faulty_link import FaultyLink

pytestmark = pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                                reason="needs arm-none-eabi-gcc and qemu-system-arm (tools/bootstrap.sh)")
FAULTY_DEPLOY_BOUND_S = 60.0  # stated bound for one deploy through the 0.2 % drop + 0.2 % corrupt link


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> dict[str, Path]:
    """The committed digits MLP packed as T2 and Q4 with 16 bundled test inputs and reference outputs."""
    out = tmp_path_factory.mktemp("mcu-blobs")
    paths = {}
    for fmt in ("t2", "q4"):
        paths[fmt] = out / f"mlp_{fmt}.edgeq"
        res = CliRunner().invoke(main, ["pack", str(DIGITS_MODELS / f"mlp_{fmt}_qat.pt2"), "-f", fmt, "--calib",
                                        str(DIGITS_MODELS / "mlp_data.npz"), "--tests", "16", "-o", str(paths[fmt])])
        assert res.exit_code == 0, res.output
    return paths


@pytest.fixture
def h7_board():
    """The emulated Cortex-M7 running the upload image, with a protocol client on its UART."""
    target = get_target("stm32h7")
    with QemuSystemBoard(target.connect, build_firmware(target).elf) as board:
        yield board, P.Client(board.stream)
    assert board.proc is None  # the emulator is gone after close


@pytest.mark.parametrize("target_id,fmt,mode", [("stm32l4", "t2", "upload"), ("stm32h7", "q4", "upload"),
                                                ("corstone300", "t2", "upload"), ("corstone300", "q4", "linked")])
def test_deploy_digits_bit_exact_on_emulated_boards(blobs, target_id, fmt, mode):
    res = CliRunner().invoke(main, ["deploy", "--target", target_id, str(blobs[fmt]), "--runs", "4", "--mode", mode,
                                    "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    acc = report["accuracy"]
    assert acc["passed"] and acc["max_abs_err"] == 0 and acc["n"] == 16  # identical to the bundled reference
    assert report["device"]["emulated"] and report["device"]["url"] == get_target(target_id).connect
    lat = report["latency"]
    assert lat["stats"]["source"] == "emulated" and lat["stats"]["n"] == 4
    assert lat["instructions"]["source"] == "emulated" and lat["instructions"]["count"] > 64 * 128
    assert {m["method"] for m in lat["modelled"]} == {"roofline", "instructions"}
    assert all(m["source"] == "modelled" for m in lat["modelled"])
    assert [x["op"] for x in lat["layers"]["layers"]] == ["quantize", "linear", "linear", "linear"]
    mem = report["memory"]
    t = get_target(target_id)
    assert mem["flash_available"] == t.memory["flash_kb"] * 1024 and mem["ram_available"] == t.memory["ram_kb"] * 1024
    assert blobs[fmt].stat().st_size < mem["flash_used"] < mem["flash_available"]
    in_ram = blobs[fmt].stat().st_size if mode == "upload" else 0
    assert in_ram + mem["arena_bytes"] < mem["ram_used"] < mem["ram_available"]
    assert any(f"mode {mode}" in n for n in report["notes"])


def test_linked_image_runs_host_inputs_like_the_reference(blobs):
    """Production mode: the blob is in the flash image; inputs sent over the line, batch 3."""
    target = get_target("stm32h7")
    blob = blobs["t2"]
    data = blob.read_bytes()
    image = build_firmware(target, blob, arena_bytes=64 * 1024)
    g = read_blob(blob).graph
    x = np.random.default_rng(7).normal(0, 4, (3, 64)).astype(np.float32)
    with QemuSystemBoard(target.connect, image.elf) as board:
        c = P.Client(board.stream)
        info = c.hello()
        assert info.linked_blob == len(data) and info.core == "cortex-m7" and info.flags & 1
        v = c.verify(zlib.crc32(data), P.SOURCE_LINKED, max_batch=3)
        assert v.arena_available == 64 * 1024 and v.max_batch == 3
        c.write_input(x.tobytes())
        result = c.run(batch=3, runs=2, source=P.RUN_FROM_INPUT)
        got = np.frombuffer(c.read_output(0, 3 * v.output_bytes), np.float32).reshape(3, -1)
    assert result.blob_crc == zlib.crc32(data) and len(result.ticks) == 2 and result.ticks[0] > 0
    np.testing.assert_array_equal(got, reference.run(g, [x])[0])


def test_model_that_does_not_fit_is_refused_before_flashing(blobs, tmp_path, monkeypatch):
    board = (Path(__file__).parent.parent / "targets" / "stm32l4.toml").read_text()
    board = board.replace('id = "stm32l4"', 'id = "tiny-m4"').replace("flash_kb = 2048 ", "flash_kb = 64   ")
    (tmp_path / "tiny-m4.toml").write_text(board)
    monkeypatch.setenv("EDGEQ_TARGETS_PATH", str(tmp_path))
    started = []
    monkeypatch.setattr(QemuSystemBoard, "start", lambda self, connect=True: started.append(self))
    res = CliRunner().invoke(main, ["deploy", "--target", "tiny-m4", str(blobs["t2"])])
    assert res.exit_code == 2 and "does not fit tiny-m4" in res.output, res.output
    assert "of 65536 B (over by" in res.output and "Traceback" not in res.output
    assert started == []


def test_garbage_on_the_line_gets_error_frames_and_no_hang(h7_board):
    board, c = h7_board
    s = board.stream
    rng = np.random.default_rng(1)

    def reply(raw: bytes, timeout: float = 2.0):
        s.write(raw)
        deadline = time.monotonic() + timeout
        while True:
            got = c._next_frame(deadline)
            assert got is not None, "device went silent"
            if got is not False:
                return got

    # random bytes without a delimiter, longer than any frame, then one: an overflow error
    junk = bytes(rng.integers(1, 256, 3000, dtype=np.uint8))
    ftype, _, body = reply(junk + b"\0")
    assert ftype == P.ERROR and struct.unpack_from("<H", body)[0] == 3
    # a frame whose length field claims 65535 bytes (valid CRC)
    head = struct.pack("<BBH", P.HELLO, 9, 0xFFFF)
    forged = b"\0" + P.cobs.encode(head + struct.pack("<I", zlib.crc32(head))) + b"\0"
    ftype, _, body = reply(forged)
    assert ftype == P.ERROR and struct.unpack_from("<H", body)[0] == 2
    # an unknown frame type, well formed: refused with its own seq
    ftype, seq, body = reply(P.encode_frame(0x42, 77, b"hello"))
    assert (ftype, seq, struct.unpack_from("<H", body)[0]) == (P.ERROR, 77, 16)
    # random bytes with delimiters in them: only error frames come back, then the device still answers
    s.write(bytes(rng.integers(0, 256, 5000, dtype=np.uint8)) + b"\0")
    time.sleep(0.3)
    c._buf.clear()
    s.reset_input_buffer()
    assert c.hello().core == "cortex-m7"
    with pytest.raises(P.ProtocolError, match="TOO_LARGE.*does not fit"):
        c.load(bytes(8 << 20))


def test_unverified_blob_never_runs(h7_board, blobs):
    _, c = h7_board
    data = blobs["q4"].read_bytes()
    with pytest.raises(P.ProtocolError, match=r"STATE\): no verified blob"):
        c.run()
    c.request(P.LOAD_BEGIN, struct.pack("<II", len(data), zlib.crc32(data)))
    c.request(P.LOAD_CHUNK, struct.pack("<I", 0) + data[:200])
    with pytest.raises(P.ProtocolError, match="upload incomplete: 200 of"):
        c.verify(zlib.crc32(data))
    bad = bytearray(data)
    bad[5000] ^= 0x10  # a blob whose bytes differ from the CRC announced for it
    c.request(P.LOAD_BEGIN, struct.pack("<II", len(bad), zlib.crc32(data)))
    received = 0
    while received < len(bad):
        received = struct.unpack("<I", c.request(P.LOAD_CHUNK, struct.pack("<I", received)
                                                 + bytes(bad[received:received + 200]))[:4])[0]
    with pytest.raises(P.ProtocolError, match="VERIFY\\): blob crc32"):
        c.verify(zlib.crc32(data))
    with pytest.raises(P.ProtocolError, match="no verified blob"):
        c.run()
    c.load(data)
    assert c.verify(zlib.crc32(data)).bundled_tests == 16
    assert c.run().blob_crc == zlib.crc32(data)
    c.request(P.LOAD_CHUNK, struct.pack("<I", 0) + data[:64])  # any upload activity revokes the verification
    with pytest.raises(P.ProtocolError, match="no verified blob"):
        c.run()
    info = c.hello()
    assert info.runs_done == 1 and info.runs_refused == 3


@pytest.mark.parametrize("seed", [11, 12])
def test_deploy_through_a_link_that_drops_and_corrupts(blobs, seed):
    target = get_target("stm32h7")
    image = build_firmware(target)
    t0 = time.monotonic()
    board = QemuSystemBoard(target.connect, image.elf).start(connect=False)
    try:
        with FaultyLink(("127.0.0.1", board.port), drop=0.002, corrupt=0.002, seed=seed) as link:
            report = deploy_mcu(target, link.url, False, blobs["t2"], runs=4, warmup=0, opts=Options())
            damaged = link.to_device.dropped + link.to_device.corrupted + link.to_host.dropped + link.to_host.corrupted
    finally:
        board.close()
    assert time.monotonic() - t0 < FAULTY_DEPLOY_BOUND_S
    assert report.verdict.ok and report.accuracy.max_abs_err == 0
    assert damaged > 50  # the link really did damage the traffic
    resends = int(next(n for n in report.notes if n.startswith("serial link")).split(" resends")[0].split()[-1])
    assert resends > 0


def test_qemu_system_url_and_dead_board_errors(tmp_path):
    from edgeq.runner.transports import open_transport

    with pytest.raises(DeviceError, match="boots microcontroller firmware"):
        open_transport("qemu-system://mps2-an386")
    with pytest.raises(DeviceError, match="unknown machine 'mps2-an999'"):
        QemuSystemBoard("qemu-system://mps2-an999", tmp_path / "x.elf")
    with pytest.raises(DeviceError, match="firmware image .* not found"):
        QemuSystemBoard("qemu-system://mps2-an386", tmp_path / "x.elf").start()
    target = get_target("stm32l4")
    with QemuSystemBoard(target.connect, build_firmware(target).elf) as board:
        c = P.Client(board.stream, timeout=0.2, retries=2)
        assert c.hello().core == "cortex-m4"
        board.proc.kill()  # the board dies mid-session: a clear device error, not a hang
        board.proc.wait()
        with pytest.raises(DeviceError, match="socket://127.0.0.1"):
            c.hello()
    with pytest.raises(DeviceError, match="unreachable|cannot open"):
        open_stream(f"socket://127.0.0.1:{board.port}")


def test_nucleo_h743_board_image_and_memory_map(tmp_path):
    """Build-only: no NUCLEO board is attached here (docs/mcu.md says the image is untested on hardware)."""
    target = get_target("stm32h7")
    fw = build_firmware(target, placement="board", out=tmp_path / "fw")
    image = fw.bin.read_bytes()
    sp, reset = struct.unpack_from("<II", image)
    flash = (0x0800_0000, 0x0800_0000 + 2048 * 1024)
    ram = (0x2400_0000, 0x2400_0000 + 512 * 1024)  # AXI SRAM
    assert ram[0] < sp <= ram[1] and sp % 8 == 0
    assert reset & 1 and flash[0] <= reset < flash[1]  # Thumb entry inside the real flash
    assert "ORIGIN = 0x08000000, LENGTH = 2048K" in (tmp_path / "fw" / "memory.ld").read_text()
    out = subprocess.run(["arm-none-eabi-readelf", "-SW", str(fw.elf)], capture_output=True, text=True,
                         check=True).stdout
    for m in re.finditer(r"\]\s+(\S+)\s+(?:PROGBITS|NOBITS)\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*A\S*)",
                         out):
        name, addr, size = m.group(1), int(m.group(2), 16), int(m.group(3), 16)
        region = flash if addr < 0x2000_0000 else ram
        assert region[0] <= addr and addr + size <= region[1], (name, hex(addr), size)
    symbols = subprocess.run(["arm-none-eabi-nm", str(fw.elf)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^24080000 \w __edgeq_free_end$", symbols, re.MULTILINE)
    assert b"nucleo-h743zi" in image and b"mps-cmsdk" not in image


def test_serial_deploy_flashes_with_pyocd_first(tmp_path, monkeypatch, blobs):
    """`--connect serial://...` flashes the board image before opening the port. Stand-in for pyocd: a
    script that records its arguments (no probe is attached here); the port itself does not exist."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "pyocd").write_text(f"#!/bin/sh\necho \"$@\" > {tmp_path / 'pyocd.args'}\n")
    (bindir / "pyocd").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    res = CliRunner().invoke(main, ["deploy", "--target", "stm32h7", str(blobs["t2"]), "--connect",
                                    "serial:///dev/edgeq-no-such-port"])
    assert res.exit_code == 3 and "/dev/edgeq-no-such-port" in res.output, res.output
    args = (tmp_path / "pyocd.args").read_text().split()
    assert args[:4] == ["flash", "--target", "stm32h743zitx", "--format"] and args[-1].endswith("firmware.elf")
    assert "stm32h7-board-" in args[-1]


@pytest.mark.parametrize("target_id", ["stm32l4", "stm32h7", "stm32u5", "corstone300"])
def test_cortex_m_kernels_bit_exact_with_ref(tmp_path, target_id):
    """tests/c/cm_kernel_check.c on the emulated core: T2/T158/Q4/I8, row and block scales, mat-vec and GEMM; the
    DSP tier on every core, Helium too on the M55."""
    from edgeq.targets import mcu

    target = get_target(target_id)
    rt = Path(__file__).resolve().parent.parent / "runtimes"
    (tmp_path / "memory.ld").write_text(mcu.linker_script(target, 0, 16384))
    elf = tmp_path / "check.elf"
    cflags = [f for f in target.build["cflags"] if f != "-Os"]
    subprocess.run(["arm-none-eabi-gcc", "-O2", *cflags, "-std=c99", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                    f"-I{rt / 'include'}", f"-I{rt / 'kernels'}", "-nostartfiles", "-specs=nano.specs",
                    "-specs=nosys.specs", "-T", str(tmp_path / "memory.ld"), "-Wl,--no-warn-rwx-segments",
                    str(rt.parent / "tests/c/cm_kernel_check.c"), str(rt / "firmware/startup.c"),
                    *map(str, sorted((rt / "kernels/ref").glob("*.c"))), *map(str, sorted((rt / "kernels/cortex_m").glob("*.c"))),
                    "-lm", "-o", str(elf)], check=True)
    run = subprocess.run(["qemu-system-arm", "-M", target.section("emulator")["machine"], "-nographic", "-monitor",
                          "none", "-serial", "null", "-semihosting-config", "enable=on,target=native",
                          "-kernel", str(elf)], capture_output=True, text=True, timeout=120, check=False)
    out = run.stdout + run.stderr
    assert run.returncode == 0 and "cm-kernels ok cortex_m_dsp 120" in out, out
    assert ("cm-kernels ok helium 144" in out) == ("mve" in target.features), out  # + B1


def test_serial_url_on_a_pseudo_terminal(blobs):
    """serial:// through pyserial's real termios port: qemu puts the emulated M4's UART on a pty."""
    target = get_target("stm32l4")
    proc = subprocess.Popen(["qemu-system-arm", "-M", "mps2-an386", "-nographic", "-monitor", "none", "-serial",
                             "pty", "-icount", "shift=0", "-kernel", str(build_firmware(target).elf)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        line = proc.stdout.readline()
        pty = re.search(r"(/dev/pts/\d+)", line).group(1)
        data = blobs["q4"].read_bytes()
        with open_stream(f"serial://{pty}?baud=115200") as s:
            c = P.Client(s)
            assert c.hello().core == "cortex-m4"
            c.load(data)
            v = c.verify(zlib.crc32(data))
            c.run(1, 1, P.RUN_FROM_BUNDLED, 3)
            got = np.frombuffer(c.read_output(0, v.output_bytes), np.float32)
        g = read_blob(blobs["q4"]).graph
        x = g.tensors[g.test_tensors(L.TENSOR_TEST_INPUT)[0]].array[3:4]
        np.testing.assert_array_equal(got, reference.run(g, [x])[0][0])
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_signed_deploy_and_the_device_refuses_unsigned_or_foreign_blobs(blobs, tmp_path):
    """With --pubkey the image carries the key: VERIFY checks the Ed25519 signature on the device."""
    from edgeq.blob.sign import generate_key, load_public_key, sign_blob

    key, pub = generate_key(tmp_path / "fleet.key")
    other, _ = generate_key(tmp_path / "other.key")
    signed = sign_blob(blobs["t2"], key, tmp_path / "signed.edgeq")
    foreign = sign_blob(blobs["t2"], other, tmp_path / "foreign.edgeq")
    res = CliRunner().invoke(main, ["deploy", "--target", "stm32h7", str(signed), "--pubkey", str(pub), "--runs", "2",
                                    "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["accuracy"]["max_abs_err"] == 0
    assert any("checked the blob's Ed25519 signature" in n for n in report["notes"])
    target = get_target("stm32h7")
    image = build_firmware(target, public_key=load_public_key(pub))
    with QemuSystemBoard(target.connect, image.elf) as board:
        c = P.Client(board.stream)
        assert c.hello().signature_required
        # one bit flipped in the tensor data and every CRC recomputed: only the signature can tell
        data_sec = next(sec for sec in sections(signed.read_bytes()) if sec.kind == L.SECTION_DATA)
        forged = tmp_path / "forged.edgeq"
        forged.write_bytes(tampered(signed.read_bytes(), data_sec.offset + data_sec.size // 2, 3))
        cases = ((blobs["t2"], 124), (foreign, 125), (forged, 126))  # EDGEQ_E_UNSIGNED, _SIGNATURE_KEY, _SIGNATURE
        for blob, status in cases:
            data = Path(blob).read_bytes()
            c.load(data)
            with pytest.raises(P.ProtocolError) as e:
                c.verify(zlib.crc32(data))
            assert e.value.code == 21 and e.value.status == status
            with pytest.raises(P.ProtocolError, match="no verified blob"):
                c.run()
        data = signed.read_bytes()
        c.load(data)
        assert c.verify(zlib.crc32(data)).bundled_tests == 16 and c.run().blob_crc == zlib.crc32(data)


def test_upload_resumes_after_the_host_went_away(h7_board, blobs):
    board, c = h7_board
    data = blobs["t2"].read_bytes()
    crc = zlib.crc32(data)
    c.request(P.LOAD_BEGIN, struct.pack("<II", len(data), crc))
    for off in range(0, 4096, 128):
        c.request(P.LOAD_CHUNK, struct.pack("<I", off) + data[off:off + 128])
    # a chunk beyond a gap is not written; the reply says where to resume
    got, size = struct.unpack("<II", c.request(P.LOAD_CHUNK, struct.pack("<I", 8192) + data[8192:8320]))
    assert (got, size) == (4096, len(data))
    fresh = P.Client(board.stream)  # a new host session: its own sequence numbers
    got, _ = struct.unpack("<II", fresh.request(P.LOAD_BEGIN, struct.pack("<II", len(data), crc)))
    assert got == 4096
    sent = []
    fresh.load(data, progress=lambda done, total: sent.append(done))
    assert sent[0] == 4096 + 128 and sent[-1] == len(data)  # nothing before 4096 was sent again
    assert fresh.verify(crc).blob_size == len(data)


def test_cli_build_firmware_for_an_mcu_target(tmp_path, blobs):
    res = CliRunner().invoke(main, ["build", "--target", "stm32u5", "--blob", str(blobs["q4"]), "-o",
                                    str(tmp_path / "fw"), "--json"])
    assert res.exit_code == 0, res.output
    info = json.loads(res.output[res.output.index("{"):])
    assert info["linked_blob"] and info["placement"] == "emulated"
    assert info["sections"][".edgeq_blob"] == blobs["q4"].stat().st_size
    elf = tmp_path / "fw" / "firmware.elf"
    header = elf.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and struct.unpack_from("<H", header, 18)[0] == 40  # EM_ARM
    assert (tmp_path / "fw" / "firmware.bin").stat().st_size > blobs["q4"].stat().st_size
    assert "LENGTH = 2048K" in (tmp_path / "fw" / "memory.ld").read_text()  # the U575's flash, not the AN505's
