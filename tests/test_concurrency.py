"""Concurrent deploys and Ctrl-C: 8 `edgeq deploy` processes at once to 4 emulated rpi5 devices (two
each), and a SIGINT in the middle of a deploy. Each device is a qemu-user transport with its own
root directory (`qemu-user://cortex-a76?root=DIR`) and install dir, declared in a temporary
device inventory (EDGEQ_CONFIG_DIR); every deploy is a real `python -m edgeq.cli` process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT

from edgeq.blob import layout as L
from edgeq.blob import read_blob

pytestmark = pytest.mark.skipif(not any((Path(p) / "qemu-aarch64").exists() for p in os.environ["PATH"].split(":")),
                                reason="qemu-aarch64 (qemu-user) is not installed")
DEVICES = 4


@pytest.fixture(scope="module")
def blobs(tmp_path_factory) -> list[Path]:
    """Two different blobs (t2 and q4 MLPs) with bundled test inputs, and the rpi5 runtime built once."""
    from conftest import digits_blob_graph

    from edgeq.blob import write_blob
    from edgeq.build import build_runtime
    from edgeq.targets.registry import get_target

    out = tmp_path_factory.mktemp("blobs")
    paths = []
    for stem, fmt in (("mlp_t2_qat", "t2"), ("mlp_q4_qat", "q4")):
        graph, *_ = digits_blob_graph(stem, fmt, n_tests=8)
        graph.target = "rpi5"
        write_blob(graph, out / f"{fmt}.edgeq")
        paths.append(out / f"{fmt}.edgeq")
    build_runtime(get_target("rpi5"))  # cached: the deploy processes find it built
    return paths


class Lab:
    """A temporary inventory of emulated devices and the environment deploy processes run in."""

    def __init__(self, base: Path, count: int):
        self.base = base
        self.roots = [base / f"dev{i}" for i in range(count)]
        entries = []
        for i, root in enumerate(self.roots):
            root.mkdir()
            entries.append(f'[dev{i}]\ntarget = "rpi5"\nconnect = "qemu-user://cortex-a76?root={root}"\n'
                           f'install_dir = "{root / "installed"}"\n')
        (base / "cfg").mkdir()
        (base / "cfg" / "devices.toml").write_text("\n".join(entries))
        (base / "tmp").mkdir()
        (base / "run").mkdir()
        self.env = {**os.environ, "EDGEQ_CONFIG_DIR": str(base / "cfg"), "TMPDIR": str(base / "tmp"),
                    "XDG_RUNTIME_DIR": str(base / "run"), "PYTHONPATH": str(ROOT), "CI": "true"}

    def deploy(self, device: int, blob: Path, *extra: str) -> subprocess.Popen:
        argv = [sys.executable, "-m", "edgeq.cli", "deploy", "--device", f"dev{device}", str(blob), "--json", *extra]
        return subprocess.Popen(argv, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                stdin=subprocess.DEVNULL)

    def sessions(self, i: int) -> list[Path]:
        """Transport workdirs open on device i right now."""
        return [p for p in self.roots[i].glob("edgeq-*") if p.is_dir()]

    def emulators(self) -> list[int]:
        """qemu processes working anywhere inside this lab."""
        found = []
        for proc in Path("/proc").glob("[0-9]*"):
            try:
                if "qemu" in (proc / "comm").read_text() and str(self.base) in os.readlink(proc / "cwd"):
                    found.append(int(proc.name))
            except OSError:
                continue
        return found

    def leftovers(self) -> list[Path]:
        """Anything but the installed pair: workdirs, temp files, staged uploads."""
        allowed = {"installed", "edgeq_runner", "model.edgeq", "edgeq.pub"}
        junk = [p for root in self.roots for p in root.rglob("*") if p.name not in allowed]
        return junk + list((self.base / "tmp").iterdir())


def run_installed(root: Path) -> dict:
    """Runs the pair installed on the device, as the board would after a reboot."""
    inst = root / "installed"
    res = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a76", "./edgeq_runner", "model.edgeq", "--runs", "1"],
                         cwd=inst, capture_output=True, timeout=120, check=False)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


def bundled_outputs(blob: Path) -> np.ndarray:
    g = read_blob(blob).graph
    return np.asarray(g.tensors[g.test_tensors(L.TENSOR_TEST_OUTPUT)[0]].array, np.float32)


def test_eight_deploys_to_four_devices(blobs, tmp_path):
    lab = Lab(tmp_path, DEVICES)
    peak = {"device": [0] * DEVICES, "total": 0}
    done = threading.Event()

    def watch() -> None:  # samples the devices: never two sessions on one board
        while not done.is_set():
            counts = [len(lab.sessions(i)) for i in range(DEVICES)]
            peak["device"] = [max(a, b) for a, b in zip(peak["device"], counts)]
            peak["total"] = max(peak["total"], sum(counts))
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    jobs = [(i % DEVICES, blobs[i // DEVICES]) for i in range(2 * DEVICES)]
    try:
        procs = [lab.deploy(dev, blob, "--runs", "2", "--warmup", "0") for dev, blob in jobs]
        results = [p.communicate(timeout=240) for p in procs]
    finally:
        done.set()
        watcher.join()
    for (dev, blob), p, (out, err) in zip(jobs, procs, results):
        assert p.returncode == 0, err.decode()
        report = json.loads(out)
        assert report["device"]["name"] == f"dev{dev}" and report["blob"]["name"] == blob.name
        assert report["blob"]["formats"] == [blob.stem]
        assert report["accuracy"]["passed"] and report["accuracy"]["max_abs_err"] == 0
        assert any(f"in {lab.roots[dev] / 'installed'}" in n for n in report["notes"])
    assert peak["device"] == [1] * DEVICES, peak  # the per-device lock serialised each pair ...
    assert peak["total"] >= 2, peak  # ... while different devices ran at the same time
    assert lab.leftovers() == [] and lab.emulators() == []
    for root in lab.roots:  # each device holds whichever of its two deploys finished last, and it runs
        installed = (root / "installed" / "model.edgeq").read_bytes()
        blob = next(b for b in blobs if b.read_bytes() == installed)
        assert np.array_equal(np.asarray(run_installed(root)["outputs"], np.float32).reshape(-1),
                              bundled_outputs(blob).reshape(-1))


def test_ctrl_c_during_deploy_keeps_the_previous_install(blobs, tmp_path):
    lab = Lab(tmp_path, 1)
    first = lab.deploy(0, blobs[0], "--runs", "1")
    _, err = first.communicate(timeout=120)
    assert first.returncode == 0, err.decode()
    good = (lab.roots[0] / "installed" / "model.edgeq").read_bytes()
    assert good == blobs[0].read_bytes()

    second = lab.deploy(0, blobs[1], "--runs", "100000", "--warmup", "0")  # minutes under qemu
    deadline = time.monotonic() + 60
    while not lab.emulators():  # interrupt while the new runner is running on the device
        assert second.poll() is None and time.monotonic() < deadline, second.communicate()[1].decode()
        time.sleep(0.05)
    second.send_signal(signal.SIGINT)
    _, err = second.communicate(timeout=60)
    assert second.returncode == 130, err.decode()
    assert "error: interrupted" in err.decode() and "Traceback" not in err.decode()
    assert lab.emulators() == [] and lab.leftovers() == []
    assert (lab.roots[0] / "installed" / "model.edgeq").read_bytes() == good
    assert np.array_equal(np.asarray(run_installed(lab.roots[0])["outputs"], np.float32).reshape(-1),
                          bundled_outputs(blobs[0]).reshape(-1))


def test_signed_deploy_installs_the_key_with_the_blob(blobs, tmp_path):
    from edgeq.blob.sign import sign_blob

    lab = Lab(tmp_path, 1)
    key = tmp_path / "fleet.key"
    keygen = subprocess.run([sys.executable, "-m", "edgeq.cli", "keygen", "-o", str(key)], env=lab.env,
                            capture_output=True, check=False)
    assert keygen.returncode == 0, keygen.stderr.decode()
    signed = tmp_path / "signed.edgeq"
    signed.write_bytes(blobs[0].read_bytes())
    sign_blob(signed, key)
    p = lab.deploy(0, signed, "--runs", "1", "--pubkey", f"{key}.pub")
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    inst = lab.roots[0] / "installed"
    assert sorted(f.name for f in inst.iterdir()) == ["edgeq.pub", "edgeq_runner", "model.edgeq"]
    res = subprocess.run(["qemu-aarch64", "-cpu", "cortex-a76", "./edgeq_runner", "model.edgeq", "--runs", "1",
                          "--pubkey", "edgeq.pub", "--require-signature"], cwd=inst, capture_output=True,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr.decode()
    assert lab.leftovers() == [] and lab.emulators() == []
