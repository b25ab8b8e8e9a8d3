"""`edgeq deploy`: pack for the target -> build the runtime -> push -> run -> check -> report."""

from __future__ import annotations

import json
import os
import re
import tempfile
from contextlib import contextmanager
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
    public_key_path: str = ""  # the device's key from the inventory ("" = none)
    install_dir: str = ""  # where a passing deploy leaves runner + blob on the device ("" = nowhere)


def resolve(target_id: str, connect: str | None, device: str | None) -> Plan:
    if device:
        dev = get_device(device)
        if target_id and dev.target != target_id:
            raise EdgeqError(f"device '{device}' is a {dev.target}, not a {target_id}")
        return Plan(get_target(dev.target), dev.connect, dev.exec_wrapper, device, False, dev.public_key,
                    dev.install_dir)
    target = get_target(target_id)
    if target.family not in (*LINUX_FAMILIES, "mcu"):
        raise EdgeqError(f"target {target.id} is a {target.family} board: deploying to it needs the "
                         "FPGA flow (try `edgeq fpga`)")
    if connect:
        return Plan(target, connect, [], None, False)
    return Plan(target, target.connect, [], None, True)


@dataclass
class Signing:
    """The key the blob must be signed with (None: no signature check). A deploy given a key always requires
    the signature -- host and device -- so that stripping it is no way around the check."""

    public_key: bytes | None

    def runner_args(self) -> list[str]:
        return [] if self.public_key is None else ["--pubkey", "edgeq.pub", "--require-signature"]


def signing_for(plan: Plan, public_key: str | os.PathLike | None) -> Signing:
    """--pubkey, else the device's public_key from the inventory; a target that requires signatures needs one."""
    from edgeq.blob.sign import load_public_key

    source = public_key or plan.public_key_path or None
    if source is None and plan.target.section("security").get("require_signature", False):
        raise EdgeqError(f"target {plan.target.id} requires signed blobs ([security] require_signature): give "
                         "--pubkey FILE, or public_key for the device in devices.toml")
    return Signing(load_public_key(source) if source is not None else None)


def blob_for(target: Target, model: Path, fmt: str | None, calib: Path | None, workdir: Path,
             signing: Signing | None = None) -> Path:
    """A blob for the target: the file itself, or the model packed with the target's default format."""
    signing = signing or Signing(None)
    if model.suffix == ".edgeq":
        if signing.public_key is not None:  # refused here already, before anything is pushed
            from edgeq.blob.sign import verify_blob

            verify_blob(model, signing.public_key)
        else:
            read_blob(model)  # validates before anything is pushed
        return model
    if signing.public_key is not None:
        raise EdgeqError(f"{target.id}: deploying with a public key needs a signed blob: pack {model.name} "
                         "(edgeq pack), sign it (edgeq sign --key KEY) and deploy the .edgeq file")
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


def bundle_inputs(blob: Path, inputs: Path, workdir: Path) -> tuple[Path, list[str]]:
    """A copy of the blob whose bundled test inputs are the user's images (preprocessed as the blob
    records) with their host-reference outputs: the runner already runs bundled inputs on the device."""
    from edgeq.packer import replace_tests
    from edgeq.preprocess import image_files, load_images

    g = read_blob(blob).graph
    files = image_files(inputs)
    replace_tests(g, load_images(files, g.metadata, blob.name))
    out = workdir / ("inputs-" + blob.name)
    write_blob(g, out)
    return out, [f.name for f in files]


def predictions(blob: Path, names: list[str], outputs: list) -> list[R.Prediction]:
    """Per-input top-1 of the device outputs beside the host reference's."""
    g = read_blob(blob).graph
    ref = np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_OUTPUT)[0]].array, np.float32).reshape(len(names), -1)
    got = np.asarray(outputs, np.float32).reshape(len(names), -1)
    return [R.Prediction(n, int(row.argmax()), float(row.max()), int(r.argmax())) for n, row, r in zip(names, got, ref)]


def push_public_key(dev, signing: Signing, workdir: Path) -> None:
    """The device's runner checks the blob itself: it gets the public key as edgeq.pub."""
    if signing.public_key is not None:
        from edgeq.blob.sign import public_key_text

        path = workdir / "edgeq.pub"
        path.write_text(public_key_text(signing.public_key))
        dev.push(str(path), "edgeq.pub")


@contextmanager
def runner_on_device(plan: Plan, runner: Path, blob: Path, signing: Signing):
    """The device locked and connected, with runner + blob (+ public key) pushed: yields the transport."""
    with (device_lock(plan.url), open_transport(plan.url, exec_wrapper=plan.exec_wrapper or None) as dev,
          tempfile.TemporaryDirectory(prefix="edgeq-key-") as keydir):
        dev.push(str(runner), "edgeq_runner")
        dev.push(str(blob), "model.edgeq")
        push_public_key(dev, signing, Path(keydir))
        yield dev


def run_on_device(plan: Plan, runner: Path, blob: Path, runs: int, warmup: int, timeout: float,
                  signing: Signing | None = None):
    """Pushes runner + blob (+ public key), runs them, returns (parsed JSON, transport description).

    With an install dir, a run whose outputs match the host reference is installed there (with the
    key, so the installed runner can check its blob) before the device lock is released; anything
    else (a failure, Ctrl-C) leaves the installed files as they were.
    """
    signing = signing or Signing(None)
    with runner_on_device(plan, runner, blob, signing) as dev:
        res = dev.run(["./edgeq_runner", "model.edgeq", "--warmup", str(warmup), "--runs", str(runs),
                       *signing.runner_args()], timeout=timeout)
        desc = dev.describe()
        data = _parse_run(plan, res)
        if plan.install_dir and check_accuracy(blob, data["outputs"])["passed"]:
            dev.install(["edgeq_runner", "model.edgeq"] + (["edgeq.pub"] if signing.public_key else []),
                        plan.install_dir)
            desc["installed"] = plan.install_dir
    return data, desc


def _parse_run(plan: Plan, res) -> dict:
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
    return data


def insn_plugin() -> Path | None:
    """qemu's instruction-count plugin, built by tools/build_qemu_plugin.sh (bootstrap), if present."""
    path = Path(os.environ.get("EDGEQ_QEMU_INSN_PLUGIN") or
                Path(os.environ.get("EDGEQ_CACHE") or Path.home() / ".cache" / "edgeq") / "qemu-plugins" / "libinsn.so")
    return path if path.is_file() else None


def count_instructions(plan: Plan, runner: Path, blob: Path, timeout: float, signing: Signing | None = None) -> int | None:
    """Executed instructions of one inference under qemu-user: runs with 1 and 11 inferences, so the
    set-up (load, bundled checks) cancels in the difference. None when the plugin or qemu-user is absent."""
    plugin = insn_plugin()
    if plugin is None or not plan.url.startswith("qemu-user://"):
        return None
    url = plan.url + ("&" if "?" in plan.url else "?") + f"plugin={plugin}"
    totals = []
    signing = signing or Signing(None)
    with (device_lock(plan.url), open_transport(url) as dev,
          tempfile.TemporaryDirectory(prefix="edgeq-key-") as keydir):
        dev.push(str(runner), "edgeq_runner")
        dev.push(str(blob), "model.edgeq")
        push_public_key(dev, signing, Path(keydir))
        for runs in (1, 11):
            res = dev.run(["./edgeq_runner", "model.edgeq", "--warmup", "0", "--runs", str(runs),
                           *signing.runner_args()], timeout=timeout)
            found = re.findall(rb"total insns: (\d+)", res.stderr)
            if res.returncode != 0 or not found:
                return None
            totals.append(int(found[-1]))
    return (totals[1] - totals[0]) // 10


def kernels_by_format(formats: list[str], layer_kernels: list[str]) -> dict[str, str]:
    """Weight format -> the kernels the runtime reported for it (names are tier/format_kind, e.g.
    neon_dotprod/t2_block_matvec), so the report says what ran on the device, not what was hoped for."""
    return {f: ", ".join(sorted({k for k in layer_kernels if f"/{f}_" in k})) or "none ran" for f in formats}


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
    spec = g.metadata.get("accuracy") or {}
    if spec.get("metric") == "cosine":
        return _cosine_accuracy(g, spec, got, ref, metrics)
    metrics["tolerance"] = ATOL
    metrics["passed"] = bool(metrics["max_abs_err"] <= ATOL)
    return metrics


def _row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = a.reshape(len(a), -1).astype(np.float64), b.reshape(len(b), -1).astype(np.float64)
    return (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)


def _cosine_accuracy(g, spec: dict, got: np.ndarray, ref: np.ndarray, metrics: dict) -> dict:
    """Embedding outputs: an argmax means nothing, and fp32 libm calls (expf, erff) may differ by an ulp
    between hosts, which per-token int8 re-quantization can amplify. Passed = every sample's cosine with the host
    reference >= `min_cosine`, and, when the fp32 model's embeddings are bundled, their mean cosine with
    the device's >= `min_mean_vs_fp32` (the quantization quality gate)."""
    per_sample = _row_cosines(got, ref)
    metrics["tolerance"] = float(spec.get("min_cosine", 0.99999))
    metrics["min_sample_cosine"] = float(per_sample.min())
    passed = metrics["min_sample_cosine"] >= metrics["tolerance"]
    fp32 = [t for t in g.tensors if t.name == spec.get("fp32_reference")]
    if fp32:
        vs = _row_cosines(got, np.asarray(fp32[0].array, np.float32))
        metrics["cosine_vs_fp32_mean"] = float(vs.mean())
        metrics["cosine_vs_fp32_min"] = float(vs.min())
        metrics["fp32_threshold"] = float(spec.get("min_mean_vs_fp32", 0.0))
        passed = passed and metrics["cosine_vs_fp32_mean"] >= metrics["fp32_threshold"]
    metrics["passed"] = bool(passed)
    return metrics


def deploy(target_id: str, model: Path, *, fmt: str | None = None, connect: str | None = None,
           device: str | None = None, calib: Path | None = None, runs: int = 20, warmup: int = 3,
           timeout: float = 600.0, inputs: Path | None = None, progress=None,
           public_key: str | os.PathLike | None = None, mcu_options=None) -> R.Report:
    """The whole pipeline; raises EdgeqError subclasses with one-line messages on failure."""
    from edgeq.build import build_runtime

    step = progress or (lambda s: None)
    plan = resolve(target_id, connect, device)
    target = plan.target
    signing = signing_for(plan, public_key)
    if target.family == "mcu":
        from edgeq.runner.mcu_deploy import deploy_mcu

        if inputs is not None:
            raise EdgeqError(f"--input is not supported for {target.id} yet: MCU deploys run the bundled test inputs")

        report = deploy_mcu(target, plan.url, plan.default_connection, Path(model), fmt=fmt, calib=calib, runs=runs,
                            warmup=warmup, opts=mcu_options, progress=progress, signing=signing)
        report.device.name = plan.device_name
        return report
    with tempfile.TemporaryDirectory(prefix="edgeq-deploy-") as tmp:
        step("packing")
        blob = blob_for(target, Path(model), fmt, calib, Path(tmp), signing)
        names: list[str] = []
        if inputs is not None:
            if signing.public_key is not None:
                raise EdgeqError("--input rewrites the blob's bundled inputs, which voids its signature: run the "
                                 "images with `edgeq run`, or deploy without signature checking")
            step("bundling the input images")
            blob, names = bundle_inputs(blob, Path(inputs), Path(tmp))
        step("building runtime")
        build = build_runtime(target)
        step(f"running on {plan.url}")
        data, desc = run_on_device(plan, build.runner, blob, runs, warmup, timeout, signing)
        step("counting instructions under emulation")
        instructions = count_instructions(plan, build.runner, blob, timeout, signing)
        step("checking accuracy")
        metrics = check_accuracy(blob, data["outputs"])
        per_input = predictions(blob, names, data["outputs"]) if names else []
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
    notes = []
    energy = None
    if target.section("power"):
        energy = ModelledEnergy(target).energy(modelled[-1].ms, "modelled", modelled[-1].method)
    else:
        notes.append(f"target {target.id} has no [power] section: no energy figure")
    if signing.public_key is not None:
        from edgeq.blob.sign import key_id

        notes.append("signature verified on the host and by the device runtime "
                     f"(key id {key_id(signing.public_key).hex()})")
    if plan.default_connection:
        notes.append(f"no connection configured for {target.id}: used its emulated default {plan.url}")
    if source == "emulated":
        notes.append("latency is emulated (qemu wall time), not the board's; the modelled figure is the board estimate")
    if desc.get("installed"):
        notes.append(f"installed edgeq_runner and {blob_name} as model.edgeq in {desc['installed']} on the device")
    report = R.Report(
        target=R.TargetInfo(target.id, target.name, target.family),
        device=R.DeviceInfo(plan.url, desc.get("scheme", ""), desc.get("host", "") or "", bool(desc.get("emulated")),
                            plan.device_name, plan.default_connection),
        blob=R.BlobInfo(blob_name, blob_bytes, formats),
        build=R.BuildInfo(str(build.runner), kernels_by_format(formats, [x["kernel"] for x in data["layers"]]),
                          list(build.config.make_vars().get("TARGET_CFLAGS", "").split())),
        verdict=R.Verdict(bool(metrics["passed"]), 0 if metrics["passed"] else AccuracyError.exit_code),
        latency=R.Latency(warmup, R.build(R.LatencyStats, stats), modelled, counted, R.build(R.LayerTable, table)),
        load=R.LoadTime(source, data["load_ns"] / 1e6, 0.0),
        memory=R.Memory(int(data["arena_bytes"]), int(data["work_bytes"]), weights),
        energy=R.build(R.Energy, energy) if isinstance(energy, dict) else energy,
        accuracy=R.build(R.Accuracy, metrics),
        notes=notes,
        predictions=per_input,
        edgeq_version=__version__,
    )
    if not metrics["passed"] and metrics.get("min_sample_cosine") is not None:
        report.verdict.errors.append(
            f"embeddings: min cosine with the host reference {metrics['min_sample_cosine']:.6f} (needs "
            f"{metrics['tolerance']}), mean cosine with fp32 {metrics.get('cosine_vs_fp32_mean')} (needs "
            f"{metrics.get('fp32_threshold')})")
    elif not metrics["passed"]:
        at = metrics["max_abs_err_at"]
        report.verdict.errors.append(
            f"device output differs from the host reference: max |err| {metrics['max_abs_err']:.3g} at sample {at[0]}, "
            f"element {at[1]} (tolerance {ATOL})")
    return report
