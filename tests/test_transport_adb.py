"""adb:// with the real Debian `adb` client and server, against tests/fakes/adb_device.py.

No adbd or Android emulator can run here: the device is a wire-protocol test double (see its
docstring). The adb server is private to these tests (ANDROID_ADB_SERVER_PORT) and killed after.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from fakes.adb_device import FakeAdbDevice
from fakes.probe import build_probe, wait_no_pids_under
from fakes.sshd import free_port

from edgeq.errors import DeviceError
from edgeq.runner.transports import DeviceTimeout, open_transport

pytestmark = pytest.mark.skipif(not (shutil.which("adb") and shutil.which("aarch64-linux-gnu-gcc")
                                     and shutil.which("qemu-aarch64")),
                                reason="needs adb, gcc-aarch64-linux-gnu and qemu-user")
QEMU_A76 = ["qemu-aarch64", "-cpu", "cortex-a76"]


@pytest.fixture(scope="module", autouse=True)
def adb_server(tmp_path_factory):
    """A private adb server (own port, own ~/.android) so no real devices or user state are touched."""
    port = free_port()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANDROID_ADB_SERVER_PORT", str(port))
        mp.setenv("HOME", str(tmp_path_factory.mktemp("adb_home")))
        subprocess.run(["adb", "start-server"], check=True, capture_output=True, timeout=30)
        yield
        subprocess.run(["adb", "kill-server"], check=False, capture_output=True, timeout=30)
    deadline = time.monotonic() + 10  # the server exits asynchronously: wait until it is gone
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return
        time.sleep(0.1)
    pytest.fail(f"the private adb server on port {port} did not exit")


@pytest.fixture
def device(tmp_path):
    (tmp_path / "sandbox").mkdir()
    with FakeAdbDevice(tmp_path / "sandbox") as dev:
        yield dev


@pytest.fixture(scope="module")
def arm_probe(tmp_path_factory):
    return build_probe(tmp_path_factory.mktemp("arm"), "aarch64-linux-gnu-gcc", "-static")


def adb(*args: str) -> str:
    return subprocess.run(["adb", *args], check=False, capture_output=True, text=True, timeout=30).stdout


def test_adb_push_run_pull_on_the_fake_device(device, arm_probe, tmp_path):
    url = f"adb://{device.serial}?tmpdir={device.sandbox}"
    with open_transport(url, exec_wrapper=QEMU_A76) as dev:
        assert f"{device.serial}\tdevice" in adb("devices")
        workdir = dev.workdir()
        assert Path(workdir).parent == device.sandbox and Path(workdir).name.startswith("edgeq-")
        dev.push(arm_probe, "probe")
        r = dev.run(["./probe", "echo", "it's", "$PATH;"], timeout=30)
        assert (r.returncode, r.stdout, r.stderr) == (0, b"machine=aarch64 [it's] [$PATH;]\n", b"probe stderr\n")
        assert dev.run(["./probe", "exit", "1"], timeout=30).returncode == 1  # not mistaken for adb's 1
        assert dev.run(["./probe", "write", "out.txt", "result"], timeout=30).returncode == 0
        dev.pull("out.txt", tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_text() == "result from aarch64\n"
        dev.remove("out.txt")
        assert sorted(p.name for p in Path(workdir).iterdir()) == ["probe"]
        assert dev.describe() == {"scheme": "adb", "host": device.serial, "emulated": True, "url": url}
    assert not Path(workdir).exists()
    assert device.serial not in adb("devices")  # we connected it, so we disconnected it


def test_fake_device_speaks_the_legacy_shell_service(device):
    """`adb shell -x` uses `shell:` without protocol v2 (merged output, no exit status); `adb ls` LIST."""
    assert adb("connect", device.serial).startswith("connected")
    for _ in range(50):
        if adb("-s", device.serial, "get-state").strip() == "device":
            break
        time.sleep(0.1)
    assert adb("-s", device.serial, "shell", "-x", "echo out; echo err >&2; exit 3") == "out\nerr\n"
    (device.sandbox / "listed.txt").write_text("12345")
    assert "00000005" in adb("-s", device.serial, "ls", str(device.sandbox))  # sync LIST: size in hex
    adb("disconnect", device.serial)


def test_adb_unreachable():
    url = f"adb://127.0.0.1:{free_port()}"
    with pytest.raises(DeviceError, match=r"unreachable: .*(refused|failed)") as e:
        open_transport(url)
    assert str(e.value).startswith(url) and e.value.exit_code == 3


def test_adb_unknown_serial():
    with pytest.raises(DeviceError, match=r"^adb://no-such-phone: device not available: .*not found"):
        open_transport("adb://no-such-phone", timeout=1)


def test_adb_hung_command_is_killed_on_the_device(device, arm_probe):
    with open_transport(f"adb://{device.serial}?tmpdir={device.sandbox}", exec_wrapper=QEMU_A76) as dev:
        dev.push(arm_probe, "probe")
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match="command './probe hang' timed out after 1 s and was killed"):
            dev.run(["./probe", "hang"], timeout=1)
        assert time.monotonic() - t0 < 10
        assert wait_no_pids_under(dev.workdir()) == []
        assert dev.run(["./probe", "exit", "4"], timeout=30).returncode == 4


def test_adb_device_vanishes_mid_push(tmp_path):
    """The device drops off after 1 MiB of an 8 MiB push: the previous file stays the active one."""
    (tmp_path / "sandbox").mkdir()
    (tmp_path / "v1").write_bytes(b"version 1")
    (tmp_path / "big").write_bytes(bytes(8 << 20))
    with FakeAdbDevice(tmp_path / "sandbox", vanish_after_push_bytes=1 << 20) as device:
        dev = open_transport(f"adb://{device.serial}?tmpdir={device.sandbox}", timeout=10)
        dev.push(tmp_path / "v1", "model.edgeq")
        workdir = Path(dev.workdir())
        with pytest.raises(DeviceError, match=r"push of .*big failed: device lost or refused \(adb: error: .*\)") as e:
            dev.push(tmp_path / "big", "model.edgeq")
        assert "\n" not in str(e.value)
        assert device.vanished.is_set()
        assert (workdir / "model.edgeq").read_bytes() == b"version 1"
        partial = [p for p in workdir.iterdir() if p.name != "model.edgeq"]
        assert all(p.name.startswith(".model.edgeq.edgeq-tmp-") for p in partial)  # only an inactive temp
        t0 = time.monotonic()
        dev.close()  # best effort against a vanished device: bounded, does not raise
        assert time.monotonic() - t0 < 25
