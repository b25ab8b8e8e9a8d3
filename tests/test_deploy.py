"""`edgeq deploy` end to end: emulated rpi5 (qemu-user), a real sshd running the aarch64 runner through
qemu on the far side, and the failure cases (unknown target, MCU target, unreachable host, mismatch)."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from click.testing import CliRunner
from conftest import DIGITS_MODELS
from fakes.sshd import Sshd, free_port, sshd_problem

from edgeq.blob import layout as L
from edgeq.blob import read_blob
from edgeq.cli import main

MODEL = str(DIGITS_MODELS / "mlp_t2_qat.pt2")
CALIB = str(DIGITS_MODELS / "mlp_data.npz")


def deploy(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, ["deploy", *args], env=env)


def test_deploy_rpi5_emulated_json_report():
    res = deploy("--target", "rpi5", MODEL, "--calib", CALIB, "--runs", "3", "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["device"]["emulated"] and report["device"]["default_connection"]
    assert report["latency"]["stats"]["source"] == "emulated" and report["latency"]["stats"]["n"] == 3
    assert report["latency"]["modelled"][0]["source"] == "modelled"
    assert report["energy"]["source"] == "modelled"
    acc = report["accuracy"]
    assert acc["passed"] and acc["max_abs_err"] == 0 and acc["top1_agreement"] == 1.0
    assert report["blob"]["formats"] == ["t2"]
    assert report["build"]["kernels"]["t2"].startswith("neon_dotprod/t2_")  # the Pi 5's SDOT tier, not ref
    from edgeq.runner.deploy import insn_plugin

    if insn_plugin():  # built by tools/build_qemu_plugin.sh during bootstrap
        counted = report["latency"]["instructions"]
        # the dotprod kernels cost ~0.2 instructions per weight (the reference kernel ~10): bounds, not a figure
        weights = 4 * report["memory"]["weights_bytes"]  # T2: 4 weights per byte (scales make this an over-count)
        assert counted["source"] == "emulated" and weights / 20 < counted["count"] < 2 * weights
        assert {m["method"] for m in report["latency"]["modelled"]} == {"roofline", "instructions"}
    assert "used its emulated default qemu-user://cortex-a76" in res.output


def test_deploy_rpi5_build_on_a_core_without_dotprod_picks_neon():
    """The same aarch64 runner on a Cortex-A53 (no SDOT): the runtime chooses the ARMv8.0 NEON tier itself."""
    res = deploy("--target", "rpi5", MODEL, "--calib", CALIB, "--runs", "1", "--connect", "qemu-user://cortex-a53",
                 "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.output[res.output.index("{"):])
    assert report["accuracy"]["passed"]
    assert report["build"]["kernels"]["t2"].startswith("neon/t2_")


@pytest.mark.skipif(sshd_problem() is not None, reason=str(sshd_problem()))
def test_deploy_over_real_ssh_with_qemu_wrapper(tmp_path):
    (tmp_path / "sshd").mkdir()
    server = Sshd(tmp_path / "sshd").start()
    try:
        cfg = tmp_path / "cfg"
        cfg.mkdir()
        (cfg / "devices.toml").write_text(
            f'[lab-pi]\ntarget = "rpi5"\nconnect = "{server.url()}"\n'
            'exec_wrapper = ["qemu-aarch64", "-cpu", "cortex-a76"]\n')
        res = deploy("--device", "lab-pi", MODEL, "--calib", CALIB, "--runs", "2", "--json",
                     env={"EDGEQ_CONFIG_DIR": str(cfg)})
        assert res.exit_code == 0, res.output
        report = json.loads(res.output[res.output.index("{"):])
        assert report["device"]["scheme"] == "ssh" and report["device"]["name"] == "lab-pi"
        assert report["accuracy"]["passed"]
        res = deploy("--target", "rpi5", MODEL, "--calib", CALIB,
                     "--connect", f"ssh://{server.user}@127.0.0.1:{free_port()}?identity={server.client_key}")
        assert res.exit_code == 3 and res.output.strip().splitlines()[-1].startswith("error: ssh://")
    finally:
        server.kill()


def test_unknown_target_and_fpga_target_are_clear():
    res = deploy("--target", "rpi9", MODEL)
    assert res.exit_code == 2 and "unknown target 'rpi9'" in res.output and "Traceback" not in res.output
    res = deploy("--target", "xc7z020", MODEL)
    assert res.exit_code == 2 and "FPGA flow" in res.output  # MCU targets deploy: tests/test_mcu_deploy.py


def test_accuracy_mismatch_fails_with_exit_4(tmp_path):
    out = tmp_path / "m.edgeq"
    assert CliRunner().invoke(main, ["pack", MODEL, "-f", "t2", "--calib", CALIB, "-o", str(out)]).exit_code == 0
    blob = read_blob(out)
    rec_i = next(i for i, t in enumerate(blob.graph.tensors) if t.flags & L.TENSOR_TEST_OUTPUT)
    rec = blob.records[rec_i]
    buf = bytearray(out.read_bytes())
    vals = np.frombuffer(buf, np.float32, count=int(rec.data_size) // 4, offset=int(rec.data_offset)).copy()
    vals[5] += 1.0  # the "host reference" now disagrees with what the device computes
    buf[rec.data_offset:rec.data_offset + rec.data_size] = vals.tobytes()
    from test_blob import _reseal

    tampered = tmp_path / "tampered.edgeq"
    tampered.write_bytes(bytes(_reseal(buf)))
    assert zlib.crc32(tampered.read_bytes()) != zlib.crc32(out.read_bytes())
    res = deploy("--target", "rpi5", str(tampered), "--runs", "1")
    assert res.exit_code == 4, res.output
    assert "differs from the host reference" in res.output and "sample 0, element 5" in res.output
