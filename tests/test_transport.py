"""Transports that run on this host: local:// and qemu-user://, plus the URL factory's errors."""

from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path

import pytest
from fakes.probe import build_probe, wait_no_pids_under

from edgeq.errors import DeviceError
from edgeq.runner.transports import SCHEMES, DeviceTimeout, Transport, open_transport

needs_cross = pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                                 reason="needs gcc-aarch64-linux-gnu and qemu-user")


@pytest.fixture(scope="module")
def native_probe(tmp_path_factory):
    return build_probe(tmp_path_factory.mktemp("native"), "gcc")


@pytest.fixture(scope="module")
def arm_probe(tmp_path_factory):
    return build_probe(tmp_path_factory.mktemp("arm"), "aarch64-linux-gnu-gcc", "-static",
                       "-march=armv8.2-a+dotprod")


def roundtrip(dev, probe, tmp_path, machine: str) -> None:
    """push -> run (stdout, stderr, args, exit code) -> a file written on the device -> pull."""
    dev.push(probe, "probe")
    r = dev.run(["./probe", "echo", "a b", "ü"], timeout=30)
    assert (r.returncode, r.stdout, r.stderr) == (0, f"machine={machine} [a b] [ü]\n".encode(), b"probe stderr\n")
    assert r.wall_s > 0
    assert dev.run(["./probe", "exit", "7"], timeout=30).returncode == 7
    assert dev.run(["./probe", "write", "out.txt", "result"], timeout=30).returncode == 0
    dev.pull("out.txt", tmp_path / "out.txt")
    assert (tmp_path / "out.txt").read_text() == f"result from {machine}\n"
    dev.remove("out.txt")
    with pytest.raises(DeviceError, match="pull of out.txt failed"):
        dev.pull("out.txt", tmp_path / "again.txt")
    assert not (tmp_path / "again.txt").exists()
    with pytest.raises(DeviceError, match="pull of probe failed"):
        dev.pull("probe", tmp_path / "no-such-dir" / "probe")


def test_local_push_run_pull(native_probe, tmp_path):
    with open_transport("local://") as dev:
        roundtrip(dev, native_probe, tmp_path, "x86_64")
        workdir = dev.workdir()
        assert dev.describe() == {"scheme": "local", "host": "localhost", "emulated": False, "url": "local://"}
    assert not Path(workdir).exists()  # close() removed the workdir


@needs_cross
def test_qemu_user_runs_aarch64(arm_probe, tmp_path):
    """A static aarch64 binary cross-compiled here runs under qemu-aarch64; uname says aarch64."""
    with open_transport("qemu-user://cortex-a76") as dev:
        roundtrip(dev, arm_probe, tmp_path, "aarch64")
        assert dev.describe()["emulated"] is True and dev.describe()["cpu"] == "cortex-a76"


@needs_cross
def test_qemu_user_cpu_model_is_honoured(arm_probe):
    """SDOT runs on cortex-a76 and raises SIGILL (128 + 4, as a shell reports it) on cortex-a53."""
    with open_transport("qemu-user://cortex-a76") as a76, open_transport("qemu-user://cortex-a53") as a53:
        for dev in (a76, a53):
            dev.push(arm_probe, "probe")
        assert a76.run(["./probe", "sdot"], timeout=30).stdout == b"sdot ok\n"
        assert a53.run(["./probe", "sdot"], timeout=30).returncode == 128 + 4


@needs_cross
def test_qemu_user_hang_is_killed(arm_probe):
    with open_transport("qemu-user://max") as dev:
        dev.push(arm_probe, "probe")
        t0 = time.monotonic()
        with pytest.raises(DeviceTimeout, match=r"^qemu-user://max: command './probe hang' timed out after 0.5 s"):
            dev.run(["./probe", "hang"], timeout=0.5)
        assert time.monotonic() - t0 < 5
        assert wait_no_pids_under(dev.workdir()) == []


def test_local_timeout_kills_the_whole_process_group(tmp_path):
    """Children the command started in the background die too: nothing is left running."""
    with open_transport("local://") as dev:
        with pytest.raises(DeviceTimeout) as e:
            dev.run(["sh", "-c", "sleep 300 & sleep 300 & wait"], timeout=0.5)
        assert e.value.exit_code == 3
        assert wait_no_pids_under(dev.workdir()) == []


def test_unstartable_commands_report_like_a_shell():
    with open_transport("local://") as dev:
        r = dev.run(["./no-such-program"], timeout=10)
        assert r.returncode == 127 and b"No such file" in r.stderr


def test_exec_wrapper_prefixes_commands(tmp_path):
    with open_transport("local://", exec_wrapper=["env", "EDGEQ_WRAPPED=1"]) as dev:
        assert dev.run(["sh", "-c", "echo $EDGEQ_WRAPPED"], timeout=10).stdout == b"1\n"


def test_failed_push_keeps_the_previous_file(tmp_path):
    (tmp_path / "v1").write_text("version 1")
    with open_transport("local://") as dev:
        dev.push(tmp_path / "v1", "model.edgeq")
        with pytest.raises(DeviceError, match="push of .* failed"):
            dev.push(tmp_path, "model.edgeq")  # a directory: the copy fails midway
        with pytest.raises(DeviceError):
            dev.push(tmp_path / "missing", "model.edgeq")
        dev.pull("model.edgeq", tmp_path / "back")
        assert (tmp_path / "back").read_text() == "version 1"
        assert dev.run(["ls", "-A"], timeout=10).stdout == b"model.edgeq\n"  # no temp files left


def test_names_must_be_plain(tmp_path):
    with open_transport("local://") as dev, pytest.raises(ValueError):
        dev.push(__file__, "../escape")


@pytest.mark.parametrize(("url", "message"), [
    ("nosuch://x", "unknown scheme 'nosuch'"),
    ("qemu-user.cortex-a76", "not a device URL"),
    ("ssh://host:99999", "malformed URL"),
    ("ssh://host?identity", "malformed URL"),
    ("local://somewhere", "local:// takes no host or path"),
    ("local://?colour=red", "unknown option 'colour'"),
    ("qemu-user://", "needs a CPU model"),
    ("qemu-user://cortex-z9", "no CPU model 'cortex-z9'"),
    ("qemu-user://max?plugin=/no/such.so", "plugin /no/such.so does not exist"),
    ("socket://127.0.0.1:9", "byte stream"),
    ("ssh://h?strict=maybe", "strict must be"),
    ("ssh://h?identity=/no/key", "identity file /no/key does not exist"),
    ("adb://a@b", "expected adb://"),
])
def test_bad_urls_are_one_line_device_errors(url, message):
    with pytest.raises(DeviceError) as e:
        open_transport(url)
    text = str(e.value)
    assert text.startswith(f"{url}: ") and message in text and "\n" not in text
    assert e.value.exit_code == 3


def test_every_scheme_names_a_transport_class():
    for target in SCHEMES.values():
        module, cls = target.split(":")
        assert issubclass(getattr(importlib.import_module(f"edgeq.runner.transports.{module}"), cls), Transport)


def test_local_root_and_install_all_or_nothing(tmp_path):
    root, dest = tmp_path / "device", tmp_path / "device" / "installed"
    root.mkdir()
    with open_transport(f"local://?root={root}") as dev:
        assert Path(dev.workdir()).parent == root
        for name, text in (("a", "a1"), ("b", "b1")):
            (tmp_path / name).write_text(text)
            dev.push(tmp_path / name, name)
        dev.install(["a", "b"], str(dest))
        (tmp_path / "a").write_text("a2")
        dev.push(tmp_path / "a", "a")
        with pytest.raises(DeviceError, match="install into"):  # b2 never pushed: neither file changes
            dev.install(["a", "missing"], str(dest))
        assert [(dest / n).read_text() for n in "ab"] == ["a1", "b1"]
    assert sorted(p.name for p in root.rglob("*")) == ["a", "b", "installed"]  # workdir and staged files gone
    with pytest.raises(DeviceError, match="root directory .* does not exist"):
        open_transport(f"local://?root={tmp_path / 'nope'}")


def test_deferred_interrupts_hold_sigint_until_the_block_ends():
    import os
    import signal

    from edgeq.runner.transports.base import deferred_interrupts

    class Interrupted(Exception):
        pass

    def raise_(*_):
        raise Interrupted

    steps = []
    previous = signal.signal(signal.SIGINT, raise_)
    try:
        with pytest.raises(Interrupted):
            with deferred_interrupts():
                os.kill(os.getpid(), signal.SIGINT)
                steps.append("first rename")
                steps.append("second rename")
            steps.append("after")  # never: the held signal lands as the block ends
    finally:
        signal.signal(signal.SIGINT, previous)
    assert steps == ["first rename", "second rename"]
