"""`edgeq deploy` for microcontrollers: firmware -> fit check -> boot/connect -> load -> verify -> run -> check.

The emulated default (`qemu-system://MACHINE`) boots the firmware in qemu-system-arm; `serial://PORT`
flashes the real board's image with pyOCD or OpenOCD first; `socket://` and `rfc2217://` talk to a
board that already runs the edgeq firmware. Latency comes from the firmware's SysTick: under qemu
`-icount` those ticks are emulated (instruction-derived), and the board figure is modelled from them.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from edgeq import __version__
from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.errors import AccuracyError, DeviceError, EdgeqError
from edgeq.formats import ids as F
from edgeq.report import model as R
from edgeq.runner import mcu_protocol as P
from edgeq.runner import profile
from edgeq.runner.devices import device_lock
from edgeq.runner.energy import ModelledEnergy
from edgeq.runner.transports.qemu_system import QemuSystemBoard
from edgeq.runner.transports.stream import STREAM_SCHEMES, open_stream
from edgeq.targets import latency, mcu
from edgeq.targets.registry import Target

DTYPES = {F.FMT_F32: np.float32, F.FMT_F16: np.float16, F.FMT_I32: np.int32, F.FMT_I8: np.int8, F.FMT_U8: np.uint8}
ICOUNT_SHIFT = 0  # qemu -icount shift: every instruction advances virtual time by 2^shift ns
MODES = ("upload", "linked")


@dataclass
class Options:
    """Knobs of an MCU deploy; the defaults suit the emulated boards."""

    mode: str = "upload"          # upload: blob over serial into RAM; linked: blob in the flash image
    chunk: int = P.DEFAULT_CHUNK  # LOAD_CHUNK payload bytes
    reply_timeout: float = 0.5    # seconds per reply before a resend
    retries: int = 40             # resends per request
    flash: bool = True            # serial://: flash the board image before talking to it


def fit_or_refuse(target: Target, blob: Path, code: mcu.CodeSize, mode: str) -> mcu.FitReport:
    """The board's flash/RAM verdict; a model that does not fit is refused here, before any flashing."""
    report = mcu.fit(target, blob, code=code)
    ram_used = report.ram.used + (report.blob.stat().st_size if mode == "upload" else 0)
    problems = []
    if not report.flash.fits:
        problems.append(f"flash needs {report.flash.used} B of {report.flash.available} B "
                        f"(over by {-report.flash.margin} B)")
    if ram_used > report.ram.available:
        what = "arena + stack + data" + (" + the uploaded blob" if mode == "upload" else "")
        problems.append(f"RAM needs {ram_used} B ({what}) of {report.ram.available} B "
                        f"(over by {ram_used - report.ram.available} B)")
    if problems:
        fits = [f for f, a in report.alternatives.items() if a["fits"]]
        hint = f"; formats that would fit: {', '.join(fits)}" if fits else ""
        raise EdgeqError(f"{blob.name} does not fit {target.id} ({target.name}): {'; '.join(problems)}{hint}")
    return report


def flash_board(target: Target, image: Path, timeout: float = 120.0) -> str:
    """Writes the board image with the target's programmer; returns what ran. Untested on hardware here."""
    fw = target.section("firmware")
    tool = fw.get("flash_tool")
    if tool == "pyocd":
        argv = ["pyocd", "flash", "--target", fw["flash_target"], "--format", "elf", str(image)]
    elif tool == "openocd":
        argv = ["openocd", "-f", fw["flash_target"], "-c", f"program {image} verify reset exit"]
    else:
        raise EdgeqError(f"target {target.id} names no flash tool ([firmware] flash_tool): flash the image yourself "
                         "and connect with socket:// or pass --no-flash")
    if shutil.which(argv[0]) is None:
        raise DeviceError(f"{argv[0]} not found: install it (pip install pyocd / apt-get install openocd) to flash "
                          f"{target.id}")
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"{argv[0]} did not finish flashing within {timeout:g} s") from None
    if proc.returncode:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DeviceError(f"flashing with {argv[0]} failed (exit {proc.returncode}): {tail[0]}")
    return " ".join(argv)


class Session:
    """A connected board: the emulator (if any) and the protocol client; closing kills the emulator."""

    def __init__(self, target: Target, url: str, image: Path, opts: Options):
        scheme = urlsplit(url).scheme
        self.board: QemuSystemBoard | None = None
        self.place = None  # a labgrid place, held until close()
        self.flashed = ""
        if scheme == "qemu-system":
            self.board = QemuSystemBoard(url, image, icount_shift=ICOUNT_SHIFT)
            if self.board.machine != target.section("emulator")["machine"]:
                raise EdgeqError(f"{url}: target {target.id} is emulated by {target.section('emulator')['machine']}, "
                                 f"not {self.board.machine}")
            self.board.start()
            stream = self.board.stream
        elif scheme in STREAM_SCHEMES - {"loop"}:
            if scheme == "serial" and opts.flash:
                self.flashed = flash_board(target, image)
            stream = open_stream(url, target.section("firmware").get("baud", 115200))
        elif scheme == "labgrid":  # the place's NetworkSerialPort, to a board that runs the edgeq firmware
            from edgeq.runner.transports.labgrid import LabgridPlace

            self.place = LabgridPlace(url)
            try:
                stream = self.place.open_stream()
            except BaseException:
                self.place.close()
                raise
        else:
            raise DeviceError(f"{url}: MCU boards are reached by qemu-system://MACHINE, serial://PORT, socket://HOST:PORT, "
                              "rfc2217://HOST:PORT or labgrid://PLACE")
        self.url = url
        self.client = P.Client(stream, timeout=opts.reply_timeout, retries=opts.retries, chunk=opts.chunk)

    def describe(self) -> dict:
        if self.board is not None:
            return self.board.describe()
        if self.place is not None:
            return {"scheme": "labgrid", "host": urlsplit(self.client.stream.url).hostname, "url": self.url,
                    "emulated": self.place.emulated, "uart": self.client.stream.url, **self.place.describe()}
        parts = urlsplit(self.url)
        return {"scheme": parts.scheme, "host": parts.hostname or "localhost", "emulated": False, "url": self.url}

    def close(self) -> None:
        try:
            self.client.stream.close()
        finally:
            if self.board is not None:
                self.board.close()
            if self.place is not None:
                self.place.close()


def _decode(raw: bytes, fmt: int) -> np.ndarray:
    return np.frombuffer(raw, DTYPES[fmt]).astype(np.float32)


def run_bundled(client: P.Client, verified: P.Verified, out_fmt: int) -> list[np.ndarray]:
    """Outputs of every bundled test input, one RUN + READ_OUTPUT each (batch 1: the arena fit checked)."""
    outs = []
    for k in range(verified.bundled_tests):
        client.run(1, 1, P.RUN_FROM_BUNDLED, k)
        outs.append(_decode(client.read_output(0, verified.output_bytes), out_fmt))
    return outs


def timed_runs(c: P.Client, runs: int) -> P.Result:
    """`runs` timed runs on bundled input 0, in RUN requests of at most MAX_RUNS; ticks of all of them."""
    ticks, crcs = [], set()
    while len(ticks) < runs:
        result = c.run(1, min(P.MAX_RUNS, runs - len(ticks)), P.RUN_FROM_BUNDLED, 0)
        ticks += result.ticks
        crcs.add(result.blob_crc)
    if len(crcs) > 1:
        raise DeviceError(f"{c.stream.url}: the device ran different blobs (crc32 {sorted(crcs)}) within one deploy")
    return P.Result(1, crcs.pop() if crcs else 0, ticks)


def load_and_verify(c: P.Client, data: bytes, mode: str, step) -> tuple[P.Verified, float]:
    """Uploads (upload mode) and verifies; a blob that arrived damaged despite the per-chunk CRCs fails the
    whole-blob CRC, the device discards it, and it is uploaded once more."""
    crc = zlib.crc32(data)
    for attempt in range(2):
        if mode == "upload":
            step(f"loading {len(data)} bytes")
            c.load(data)
        step("verifying")
        t = time.monotonic()
        try:
            return c.verify(crc, P.SOURCE_UPLOADED if mode == "upload" else P.SOURCE_LINKED), time.monotonic() - t
        except P.ProtocolError as e:
            if mode != "upload" or attempt or "crc32" not in str(e):
                raise
    raise AssertionError("unreachable")


def deploy_mcu(target: Target, url: str, default_connection: bool, model: Path, *, fmt: str | None = None,
               calib: Path | None = None, runs: int = 20, warmup: int = 3, opts: Options | None = None,
               progress=None, signing=None) -> R.Report:
    """The MCU pipeline; raises EdgeqError subclasses with one-line messages on failure."""
    from edgeq.build.firmware import build_firmware
    from edgeq.runner.deploy import ATOL, Signing, blob_for, check_accuracy

    opts = opts or Options()
    signing = signing or Signing(None)
    key = signing.public_key  # compiled into the image: the device refuses blobs not signed by it
    if opts.mode not in MODES:
        raise EdgeqError(f"mode must be one of {', '.join(MODES)}, got {opts.mode!r}")
    step = progress or (lambda s: None)
    placement = "board" if urlsplit(url).scheme == "serial" else "emulated"
    with tempfile.TemporaryDirectory(prefix="edgeq-deploy-") as tmp:
        step("packing")
        blob = blob_for(target, Path(model), fmt, calib, Path(tmp), signing)
        data = blob.read_bytes()
        step("building firmware")
        generic = build_firmware(target, placement=placement, public_key=key)
        step("checking the fit")
        fit = fit_or_refuse(target, blob, generic.code_size, opts.mode)
        image = generic
        if opts.mode == "linked":
            image = build_firmware(target, blob, placement=placement, arena_bytes=fit.ram.parts["arena"],
                                   public_key=key)
        parsed = read_blob(blob)
        g = parsed.graph
        out_fmt = g.tensors[g.outputs[0]].format
        step(f"connecting to {url}")
        with contextlib.nullcontext() if urlsplit(url).scheme == "qemu-system" else device_lock(url):
            session = Session(target, url, image.elf, opts)  # an emulator is private to this deploy: no lock
            try:
                c = session.client
                info = c.hello()
                if info.core != target.cpu["core"]:
                    raise DeviceError(f"{url}: the board runs firmware for {info.core}, target {target.id} is "
                                      f"{target.cpu['core']}")
                crc = zlib.crc32(data)
                t0 = time.monotonic()
                verified, verify_s = load_and_verify(c, data, opts.mode, step)
                upload_s = time.monotonic() - t0 - verify_s
                step("running the bundled inputs")
                outputs = run_bundled(c, verified, out_fmt)
                step("timing")
                timed_runs(c, warmup)
                result = timed_runs(c, runs)
                layers = c.profile()
                final = c.hello()
                desc = session.describe()
            finally:
                session.close()
        if result.blob_crc != crc:
            raise DeviceError(f"{url}: the device ran a blob with crc32 {result.blob_crc:#x}, not {crc:#x}")
        step("checking accuracy")
        metrics = check_accuracy(blob, outputs)
        estimate = latency.predict_blob(target, blob)
        weights = sum(int(r.data_size) for r, t in zip(parsed.records, g.tensors) if t.packed is not None)
        formats = sorted({t.packed.fmt.name for t in g.tensors if t.packed is not None})
    emulated = bool(desc.get("emulated"))
    source = "emulated" if emulated else "measured"
    hz = info.ticks_per_second
    stats = profile.latency_stats([t / hz for t in result.ticks], source)
    layer_rows = [(x.index, L.OP_NAMES.get(x.op, str(x.op)), x.kernel, x.ticks / hz) for x in layers]
    table = profile.attach_modelled_layers(profile.layer_stats([layer_rows], source), estimate)
    modelled = [R.build(R.ModelledLatency, profile.modelled_latency(estimate))]
    counted = None
    if emulated:
        insn_per_tick = 1e9 / (hz * 2 ** ICOUNT_SHIFT)
        instructions = round(float(np.median(result.ticks)) * insn_per_tick)
        counted = R.build(R.InstructionCount, profile.instruction_count(
            instructions, f"SysTick under qemu -icount shift={ICOUNT_SHIFT} ({insn_per_tick:g} instructions per tick)"))
        modelled.append(R.build(R.ModelledLatency, profile.modelled_from_instructions(target, instructions)))
    energy = ModelledEnergy(target).energy(modelled[-1].ms, "modelled", modelled[-1].method)
    blob_in_ram = len(data) if opts.mode == "upload" else 0
    flash_used = info.flash_used if opts.mode == "linked" else info.flash_used + len(data)
    arena_outside_image = 0 if info.static_arena >= verified.arena_bytes else verified.arena_bytes  # else counted
    ram_used = info.ram_used + blob_in_ram + arena_outside_image + verified.input_bytes * verified.max_batch
    stats_link = c.stats
    notes = []
    if default_connection:
        notes.append(f"no connection configured for {target.id}: used its emulated default {url}")
    if emulated:
        notes.append(f"latency is emulated (SysTick at the emulated {hz / 1e6:g} MHz under qemu -icount), not the "
                     f"board's; the modelled figures are the {target.cpu['freq_mhz']} MHz board estimate")
    notes.append(f"serial link: {stats_link.requests} requests, {stats_link.resends} resends, mode {opts.mode}"
                 + (f", {len(data)} B uploaded in {upload_s:.2f} s" if opts.mode == "upload" else ""))
    if opts.mode == "upload":
        notes.append("flash use counts the blob as it would be linked in production; this run held it in RAM")
    if key is not None:
        notes.append("the image holds the public key: the device checked the blob's Ed25519 signature at VERIFY")
    if session.flashed:
        notes.append(f"flashed with: {session.flashed}")
    if final.runs_refused:
        notes.append(f"the device refused {final.runs_refused} RUN request(s) for want of a verified blob")
    report = R.Report(
        target=R.TargetInfo(target.id, target.name, target.family),
        device=R.DeviceInfo(url, desc.get("scheme", ""), desc.get("host", "") or "", emulated, None,
                            default_connection),
        blob=R.BlobInfo(blob.name, len(data), formats),
        build=R.BuildInfo(str(image.elf), {f: verified.kernel_tier for f in formats}, target.build["cflags"]),
        verdict=R.Verdict(bool(metrics["passed"]), 0 if metrics["passed"] else AccuracyError.exit_code),
        latency=R.Latency(warmup, R.build(R.LatencyStats, stats), modelled, counted, R.build(R.LayerTable, table)),
        load=R.LoadTime(source, verify_s * 1e3, 0.0),
        memory=R.Memory(verified.arena_bytes, generic.code_size.data + generic.code_size.bss, weights,
                        flash_used=flash_used, flash_available=fit.flash.available, ram_used=ram_used,
                        ram_available=fit.ram.available),
        energy=energy,
        accuracy=R.build(R.Accuracy, metrics),
        notes=notes,
        edgeq_version=__version__,
    )
    if not metrics["passed"]:
        at = metrics["max_abs_err_at"]
        report.verdict.errors.append(
            f"device output differs from the host reference: max |err| {metrics['max_abs_err']:.3g} at sample {at[0]}, "
            f"element {at[1]} (tolerance {ATOL})")
    return report
