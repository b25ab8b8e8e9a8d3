"""ssh:// against a real OpenSSH server on 127.0.0.1 with throwaway keys; aarch64 via an exec wrapper."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from fakes.probe import build_probe, wait_no_pids_under
from fakes.sshd import Sshd, free_port, keygen, sshd_problem

from edgeq.errors import DeviceError
from edgeq.runner.transports import DeviceTimeout, open_transport

pytestmark = [
    pytest.mark.skipif(sshd_problem() is not None, reason=str(sshd_problem())),
    pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                       reason="needs gcc-aarch64-linux-gnu and qemu-user"),
]
QEMU_A76 = ["qemu-aarch64", "-cpu", "cortex-a76"]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    server = Sshd(tmp_path_factory.mktemp("sshd")).start()
    yield server
    server.kill()


@pytest.fixture(scope="module")
def arm_probe(tmp_path_factory):
    return build_probe(tmp_path_factory.mktemp("arm"), "aarch64-linux-gnu-gcc", "-static")


def ssh_processes_for(control_dir: str) -> list[str]:
    """ssh clients still using this transport's control socket (the master included)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if control_dir in cmd:
            found.append(cmd)
    return found


def test_ssh_runs_aarch64_through_exec_wrapper(sshd, arm_probe, tmp_path):
    with open_transport(sshd.url(), exec_wrapper=QEMU_A76) as dev:
        workdir = dev.workdir()
        assert workdir.startswith("/") and Path(workdir).is_dir()  # the "remote" is this host
        dev.push(arm_probe, "probe")
        assert os.access(Path(workdir, "probe"), os.X_OK)  # permission bits survive the copy
        r = dev.run(["./probe", "echo", "it's", "$HOME;"], timeout=30)  # quoting survives two shells
        assert (r.returncode, r.stdout, r.stderr) == (0, b"machine=aarch64 [it's] [$HOME;]\n", b"probe stderr\n")
        assert dev.run(["./probe", "exit", "255"], timeout=30).returncode == 255  # not mistaken for ssh's 255
        assert dev.run(["./probe", "write", "out.txt", "result"], timeout=30).returncode == 0
        dev.pull("out.txt", tmp_path / "out.txt")
        assert (tmp_path / "out.txt").read_text() == "result from aarch64\n"
        assert dev.describe() == {"scheme": "ssh", "host": "127.0.0.1", "emulated": True, "url": sshd.url(),
                                  "port": sshd.port, "user": sshd.user}
        control_dir = dev.control_dir
        assert ssh_processes_for(control_dir)  # one multiplexed master connection
    assert not Path(workdir).exists()
    assert ssh_processes_for(control_dir) == [] and not Path(control_dir).exists()


def test_ssh_refused_auth(sshd, tmp_path):
    other = keygen(tmp_path / "other_key")
    with pytest.raises(DeviceError, match=r"authentication refused.*Permission denied") as e:
        open_transport(sshd.url(identity=str(other)))
    assert str(e.value).startswith(f"ssh://{sshd.user}@127.0.0.1:{sshd.port}?") and e.value.exit_code == 3


def test_ssh_unreachable(sshd):
    url = f"ssh://{sshd.user}@127.0.0.1:{free_port()}?identity={sshd.client_key}"
    with pytest.raises(DeviceError, match="unreachable: connection refused"):
        open_transport(url, timeout=5)


def test_ssh_unknown_host_key_is_refused(sshd, tmp_path):
    (tmp_path / "empty_known_hosts").write_text("")
    with pytest.raises(DeviceError, match="host key not in known_hosts.*Host key verification failed"):
        open_transport(sshd.url(known_hosts=str(tmp_path / "empty_known_hosts")))
    assert (tmp_path / "empty_known_hosts").read_text() == ""  # nothing was learnt silently


def test_ssh_hung_command_is_killed_on_the_device(sshd, arm_probe):
    with open_transport(sshd.url(), exec_wrapper=QEMU_A76) as dev:
        dev.push(arm_probe, "probe")
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match=r"command './probe hang' timed out after 1 s and was killed"):
            dev.run(["./probe", "hang"], timeout=1)
        assert time.monotonic() - t0 < 10
        assert wait_no_pids_under(dev.workdir()) == []  # qemu and the remote shell are gone
        assert dev.run(["./probe", "exit", "3"], timeout=30).returncode == 3  # the connection still works


def test_ssh_connection_dies_mid_push(tmp_path):
    """sshd is killed while a large file is on its way: the old file stays, nothing partial is active."""
    (tmp_path / "server").mkdir()
    server = Sshd(tmp_path / "server").start()
    try:
        (tmp_path / "v1").write_bytes(b"version 1")
        big = tmp_path / "big"
        with open(big, "wb") as f:
            f.truncate(2 << 30)  # sparse: cheap to read here, ~seconds to push over ssh
        dev = open_transport(server.url(), timeout=30)
        dev.push(tmp_path / "v1", "model.edgeq")
        workdir = Path(dev.workdir())
        errors: list[Exception] = []

        def push_big() -> None:
            try:
                dev.push(big, "model.edgeq")
            except DeviceError as e:
                errors.append(e)

        pusher = threading.Thread(target=push_big)
        pusher.start()
        deadline = time.monotonic() + 20
        while not any(p.stat().st_size > (1 << 20) for p in workdir.glob(".model.edgeq.edgeq-tmp-*")):
            assert time.monotonic() < deadline and pusher.is_alive(), "the upload never started"
            time.sleep(0.005)
        server.kill(sessions_too=False)
        pusher.join(30)
        assert not pusher.is_alive()
        assert len(errors) == 1 and "push of" in str(errors[0]) and "\n" not in str(errors[0])
        assert (workdir / "model.edgeq").read_bytes() == b"version 1"
        deadline = time.monotonic() + 5  # the device side notices EOF and drops its temp file
        while list(workdir.glob(".model.edgeq.edgeq-tmp-*")) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(p.name for p in workdir.iterdir()) == ["model.edgeq"]
        dev.close()  # best effort with the server gone: logs, does not raise
        shutil.rmtree(workdir)
    finally:
        server.kill()


def test_ssh_install_replaces_all_or_nothing(sshd, arm_probe, tmp_path):
    dest = tmp_path / "installed"
    with open_transport(sshd.url()) as dev:
        (tmp_path / "blob").write_bytes(b"new blob")
        dev.push(arm_probe, "edgeq_runner")
        dev.push(tmp_path / "blob", "model.edgeq")
        dev.install(["edgeq_runner", "model.edgeq"], str(dest))
        assert (dest / "model.edgeq").read_bytes() == b"new blob" and os.access(dest / "edgeq_runner", os.X_OK)
        (tmp_path / "blob").write_bytes(b"newer blob")
        dev.push(tmp_path / "blob", "model.edgeq")
        with pytest.raises(DeviceError, match="installing into"):  # one file missing: nothing changes
            dev.install(["model.edgeq", "missing"], str(dest))
        assert (dest / "model.edgeq").read_bytes() == b"new blob"
        dev.install(["model.edgeq"], str(dest))
    assert (dest / "model.edgeq").read_bytes() == b"newer blob"
    assert sorted(p.name for p in dest.iterdir()) == ["edgeq_runner", "model.edgeq"]  # no staged temp left
