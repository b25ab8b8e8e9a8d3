"""`edgeq deploy`: pack for the target -> build the runtime -> push -> run -> check -> report."""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgeq import __version__
from edgeq.blob import layout as L
from edgeq.blob import read_blob, write_blob
from edgeq.errors import AccuracyError, BlobError, DeviceError, EdgeqError
from edgeq.report import model as R
from edgeq.report.accuracy import accuracy_metrics
from edgeq.runner import profile
from edgeq.runner.devices import device_lock, get_device
from edgeq.runner.energy import ModelledEnergy
from edgeq.runner.transports import open_transport
from edgeq.targets import latency
from edgeq.targets.registry import Target, get_target

LINUX_FAMILIES = ("arm-linux", "android", "host")
ATOL = 1e-5  # outputs are deterministic fp32 ops; only softmax's expf may differ by an ulp across libms


@dataclass
class Plan:
    """Where and how to deploy: resolved target, connection URL, exec wrapper, note for the user."""

    target: Target
    url: str
    exec_wrapper: list[str]
    device_name: str | None
    default_connection: bool


def resolve(target_id: str, connect: str | None, device: str | None) -> Plan:
    if device:
        dev = get_device(device)
        if target_id and dev.target != target_id:
            raise EdgeqError(f"device '{device}' is a {dev.target}, not a {target_id}")
        return Plan(get_target(dev.target), dev.connect, dev.exec_wrapper, device, False)
    target = get_target(target_id)
    if target.family not in (*LINUX_FAMILIES, "mcu"):
        raise EdgeqError(f"target {target.id} is a {target.family} board: deploying to it needs the "
                         "FPGA flow (try `edgeq fpga`)")
    if connect:
        return Plan(target, connect, [], None, False)
    return Plan(target, target.connect, [], None, True)


def blob_for(target: Target, model: Path, fmt: str | None, calib: Path | None, workdir: Path) -> Path:
    """A blob for the target: the file itself, or the model packed with the target's default format."""
    if model.suffix == ".edgeq":
        read_blob(model)  # validates before anything is pushed
        return model
    from edgeq.cli_pack import calibration_data, load_model
    from edgeq.packer import Recipe, pack

    fg = load_model(model)
    x, tests, labels = calibration_data(calib, fg, model)
    if tests is not None:
        tests, labels = tests[:32], (labels[:32] if labels is not None else None)
    graph = pack(fg, x, Recipe(fmt or target.default_format), target=target.id, tests=tests, labels=labels)
    out = workdir / (model.stem + ".edgeq")
    write_blob(graph, out)
    return out


def run_on_device(plan: Plan, runner: Path, blob: Path, runs: int, warmup: int, timeout: float):
    """Pushes runner + blob, runs them, returns (parsed JSON, transport description)."""
    with device_lock(plan.url), open_transport(plan.url, exec_wrapper=plan.exec_wrapper or None) as dev:
        dev.push(str(runner), "edgeq_runner")
        dev.push(str(blob), "model.edgeq")
        res = dev.run(["./edgeq_runner", "model.edgeq", "--warmup", str(warmup), "--runs", str(runs)], timeout=timeout)
        desc = dev.describe()
    text = res.stdout.decode(errors="replace")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        detail = (res.stderr.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise DeviceError(f"{plan.url}: the runner exited with code {res.returncode}: {detail[:200]}") from None
    if "error" in data:
        raise BlobError(f"{plan.url}: the device refused the blob: {data['error']}")
    if res.returncode != 0:
        raise DeviceError(f"{plan.url}: the runner exited with code {res.returncode}")
    return data, desc


def insn_plugin() -> Path | None:
    """qemu's instruction-count plugin, built by tools/build_qemu_plugin.sh (bootstrap), if present."""
    path = Path(os.environ.get("EDGEQ_QEMU_INSN_PLUGIN") or
                Path(os.environ.get("EDGEQ_CACHE") or Path.home() / ".cache" / "edgeq") / "qemu-plugins" / "libinsn.so")
    return path if path.is_file() else None


def count_instructions(plan: Plan, runner: Path, blob: Path, timeout: float) -> int | None:
    """Executed instructions of one inference under qemu-user: runs with 1 and 11 inferences, so the
    set-up (load, bundled checks) cancels in the difference. None when the plugin or qemu-user is absent."""
    plugin = insn_plugin()
    if plugin is None or not plan.url.startswith("qemu-user://"):
        return None
    url = plan.url + ("&" if "?" in plan.url else "?") + f"plugin={plugin}"
    totals = []
    with open_transport(url) as dev:
        dev.push(str(runner), "edgeq_runner")
        dev.push(str(blob), "model.edgeq")
        for runs in (1, 11):
            res = dev.run(["./edgeq_runner", "model.edgeq", "--warmup", "0", "--runs", str(runs)], timeout=timeout)
            found = re.findall(rb"total insns: (\d+)", res.stderr)
            if res.returncode != 0 or not found:
                return None
            totals.append(int(found[-1]))
    return (totals[1] - totals[0]) // 10


def check_accuracy(blob_path: Path, outputs: list) -> dict:
    """Device outputs of the bundled inputs vs the host reference outputs stored in the blob."""
    g = read_blob(blob_path).graph
    refs = g.test_tensors(L.TENSOR_TEST_OUTPUT)
    if not refs:
        raise EdgeqError(f"{blob_path.name} has no bundled test inputs: pack it with --calib data holding x_test")
    ref = np.asarray(g.tensors[refs[0]].array, np.float32)
    got = np.asarray(outputs, np.float32).reshape(ref.shape)
    labels = g.test_tensors(L.TENSOR_TEST_LABEL)
    metrics = accuracy_metrics(got, ref, g.tensors[labels[0]].array if labels else None)
    metrics["tolerance"] = ATOL
    metrics["passed"] = bool(metrics["max_abs_err"] <= ATOL)
    return metrics


def deploy(target_id: str, model: Path, *, fmt: str | None = None, connect: str | None = None,
           device: str | None = None, calib: Path | None = None, runs: int = 20, warmup: int = 3,
           timeout: float = 600.0, progress=None, mcu_options=None) -> R.Report:
    """The whole pipeline; raises EdgeqError subclasses with one-line messages on failure."""
    from edgeq.build import build_runtime

    step = progress or (lambda s: None)
    plan = resolve(target_id, connect, device)
    target = plan.target
    if target.family == "mcu":
        from edgeq.runner.mcu_deploy import deploy_mcu

        report = deploy_mcu(target, plan.url, plan.default_connection, Path(model), fmt=fmt, calib=calib, runs=runs,
                            warmup=warmup, opts=mcu_options, progress=progress)
        report.device.name = plan.device_name
        return report
    with tempfile.TemporaryDirectory(prefix="edgeq-deploy-") as tmp:
        step("packing")
        blob = blob_for(target, Path(model), fmt, calib, Path(tmp))
        step("building runtime")
        build = build_runtime(target)
        step(f"running on {plan.url}")
        data, desc = run_on_device(plan, build.runner, blob, runs, warmup, timeout)
        step("counting instructions under emulation")
        instructions = count_instructions(plan, build.runner, blob, timeout)
        step("checking accuracy")
        metrics = check_accuracy(blob, data["outputs"])
        parsed = read_blob(blob)
        estimate = latency.predict_blob(target, blob)
        blob_bytes = blob.stat().st_size
        weights = sum(int(r.data_size) for r, t in zip(parsed.records, parsed.graph.tensors) if t.packed is not None)
        formats = sorted({t.packed.fmt.name for t in parsed.graph.tensors if t.packed is not None})
        blob_name = blob.name
    source = "emulated" if desc.get("emulated") else "measured"
    stats = profile.latency_stats([ns / 1e9 for ns in data["runs_ns"]], source)
    layer_runs = [[(x["index"], x["op"], x["kernel"], x["ns"] / 1e9) for x in data["layers"]]]
    table = profile.attach_modelled_layers(profile.layer_stats(layer_runs, source), estimate)
    modelled = [R.build(R.ModelledLatency, profile.modelled_latency(estimate))]
    counted = None
    if instructions is not None:
        counted = R.build(R.InstructionCount, profile.instruction_count(instructions, "qemu insn plugin, per inference"))
        modelled.append(R.build(R.ModelledLatency, profile.modelled_from_instructions(target, instructions)))
    energy = ModelledEnergy(target).energy(modelled[-1].ms, "modelled", modelled[-1].method)
    notes = []
    if plan.default_connection:
        notes.append(f"no connection configured for {target.id}: used its emulated default {plan.url}")
    if source == "emulated":
        notes.append("latency is emulated (qemu wall time), not the board's; the modelled figure is the board estimate")
    report = R.Report(
        target=R.TargetInfo(target.id, target.name, target.family),
        device=R.DeviceInfo(plan.url, desc.get("scheme", ""), desc.get("host", "") or "", bool(desc.get("emulated")),
                            plan.device_name, plan.default_connection),
        blob=R.BlobInfo(blob_name, blob_bytes, formats),
        build=R.BuildInfo(str(build.runner), {f: "ref" for f in formats}, list(build.config.make_vars().get(
            "TARGET_CFLAGS", "").split())),
        verdict=R.Verdict(bool(metrics["passed"]), 0 if metrics["passed"] else AccuracyError.exit_code),
        latency=R.Latency(warmup, R.build(R.LatencyStats, stats), modelled, counted, R.build(R.LayerTable, table)),
        load=R.LoadTime(source, data["load_ns"] / 1e6, 0.0),
        memory=R.Memory(int(data["arena_bytes"]), int(data["work_bytes"]), weights),
        energy=R.build(R.Energy, energy) if isinstance(energy, dict) else energy,
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
