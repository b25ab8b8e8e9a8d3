"""labgrid://PLACE against a real labgrid farm on 127.0.0.1: labgrid-coordinator, labgrid-exporter and
labgrid-client 26.0.1 from .venv-labgrid (tools/labgrid_env.sh). The exported NetworkSerialPort leads to
the UART of an emulated Cortex-M7 (qemu-system-arm -M mps2-an500 running the edgeq firmware), the exported
NetworkService to a real sshd. Only the board is emulated; the farm, its protocol and its locking are real."""

from __future__ import annotations

import functools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import DIGITS_MODELS, ROOT
from fakes.sshd import SSHD, Sshd, sshd_problem

from edgeq.build.firmware import build_firmware
from edgeq.cli import main
from edgeq.errors import DeviceError
from edgeq.runner import mcu_protocol as P
from edgeq.runner.deploy import deploy
from edgeq.runner.transports import open_transport
from edgeq.runner.transports.labgrid import LabgridPlace
from edgeq.runner.transports.qemu_system import QemuSystemBoard, free_port
from edgeq.targets import get_target

VENV_BIN = ROOT / ".venv-labgrid" / "bin"
START_TIMEOUT_S = 20.0


@functools.cache
def labgrid_problem() -> str | None:
    """Why no labgrid farm can run here, or None; makes .venv-labgrid if bootstrap has not."""
    if not (VENV_BIN / "labgrid-client").is_file():
        proc = subprocess.run(["bash", str(ROOT / "tools" / "labgrid_env.sh")], capture_output=True, text=True,
                              timeout=300, check=False)
        if proc.returncode != 0:
            said = (proc.stdout + proc.stderr).strip().splitlines()
            return f".venv-labgrid could not be created (tools/labgrid_env.sh exited {proc.returncode}" + \
                (f": {said[-1]})" if said else ")")
    return None


needs_labgrid = pytest.mark.skipif(labgrid_problem() is not None, reason=str(labgrid_problem()))
needs_arm = pytest.mark.skipif(not (shutil.which("arm-none-eabi-gcc") and shutil.which("qemu-system-arm")),
                               reason="needs arm-none-eabi-gcc and qemu-system-arm (tools/bootstrap.sh)")


def wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start (exit {proc.poll()})") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Farm:
    """A coordinator on a free loopback port; exporters and client calls against it."""

    def __init__(self, root: Path):
        self.root = root
        self.address = f"127.0.0.1:{free_port()}"
        self.env = {**os.environ, "LG_COORDINATOR": self.address}
        for key in ("LG_ENV", "LG_PLACE", "LG_USERNAME"):
            self.env.pop(key, None)
        self.log = open(root / "coordinator.log", "wb")  # noqa: SIM115 - as long as the coordinator
        self.proc = subprocess.Popen([str(VENV_BIN / "labgrid-coordinator"), "-l", self.address], cwd=root,
                                     stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(int(self.address.rsplit(":", 1)[1]), self.proc, "labgrid-coordinator")

    def client(self, *args: str, user: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
        env = {**self.env, **({"LG_USERNAME": user} if user else {})}
        proc = subprocess.run([str(VENV_BIN / "labgrid-client"), *args], env=env, capture_output=True, text=True,
                              timeout=60, check=False)
        assert not check or proc.returncode == 0, proc.stderr
        return proc

    def place(self, name: str, *matches: str, tags: str = "") -> None:
        self.client("-p", name, "create")
        self.client("-p", name, "add-match", *matches)
        if tags:
            self.client("-p", name, "set-tags", tags)

    def acquired_by(self, place: str) -> str:
        out = self.client("-p", place, "show").stdout
        return next(line.split(":", 1)[1].strip() for line in out.splitlines() if line.strip().startswith("acquired:"))

    @contextmanager
    def exporter(self, name: str, config: dict):
        """labgrid-exporter NAME with these resource groups, until every resource is listed by the coordinator."""
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        with open(self.root / f"{name}.log", "wb") as log:
            proc = subprocess.Popen([str(VENV_BIN / "labgrid-exporter"), "-c", self.address, "-n", name,
                                     "--hostname", "127.0.0.1", str(path)], stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)
            try:
                wanted = {f"{name}/{group}/{cls}" for group, res in config.items() for cls in res}
                deadline = time.monotonic() + START_TIMEOUT_S
                while not wanted <= set(self.client("resources", check=False).stdout.split()):
                    assert proc.poll() is None and time.monotonic() < deadline, (self.root / f"{name}.log").read_text()
                    time.sleep(0.2)
                yield proc
            finally:
                stop(proc)

    def close(self) -> None:
        stop(self.proc)
        self.log.close()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    farm = Farm(tmp_path_factory.mktemp("labgrid"))
    yield farm
    farm.close()
    assert farm.proc.poll() is not None


@pytest.fixture
def private_tmp(tmp_path, monkeypatch):
    """Every temp file edgeq makes lands here, so the test can see that none is left."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return tmp


@needs_labgrid
@needs_arm
def test_deploy_digits_to_an_emulated_stm32_through_a_labgrid_place(farm, private_tmp, monkeypatch, mlp_t2_blob):
    target = get_target("stm32h7")
    board = QemuSystemBoard(target.connect, build_firmware(target).elf).start(connect=False)  # guest waits for us
    try:
        serial = {"NetworkSerialPort": {"host": "127.0.0.1", "port": board.port, "protocol": "raw",
                                        "speed": 115200}}
        with farm.exporter("lab1", {"stm32": serial}) as exporter:
            farm.place("my-stm32", "lab1/stm32/NetworkSerialPort", tags="emulated=true")
            url = f"labgrid://my-stm32?coordinator={farm.address}"
            res = CliRunner().invoke(main, ["deploy", "--target", "stm32h7", "--connect", url,
                                            str(DIGITS_MODELS / "mlp_q4_qat.pt2"), "--calib",
                                            str(DIGITS_MODELS / "mlp_data.npz"), "--runs", "3", "--json"])
            assert res.exit_code == 0, res.output
            report = json.loads(res.output[res.output.index("{"):])
            acc = report["accuracy"]
            assert acc["passed"] and acc["max_abs_err"] == 0 and acc["n"] == 32  # bit-exact with the host reference
            assert report["device"]["url"] == url and report["device"]["scheme"] == "labgrid"
            assert report["device"]["emulated"] and report["latency"]["stats"]["source"] == "emulated"
            assert report["latency"]["stats"]["n"] == 3
            assert farm.acquired_by("my-stm32") == "None"  # released after the deploy

            held = []

            def interrupted(self):  # Ctrl-C in the middle of talking to the board
                held.append(farm.acquired_by("my-stm32"))
                raise KeyboardInterrupt

            monkeypatch.setattr(P.Client, "hello", interrupted)
            with pytest.raises(KeyboardInterrupt):
                deploy("stm32h7", mlp_t2_blob, connect=url)
            assert held[0] != "None" and farm.acquired_by("my-stm32") == "None"  # held, then released on Ctrl-C
        assert exporter.poll() is not None
    finally:
        board.close()
    assert board.proc is None
    assert list(private_tmp.iterdir()) == []  # no temp file left behind


@needs_labgrid
@needs_arm
def test_labgrid_errors_are_clear(farm, private_tmp, mlp_t2_blob):
    """A place held by someone else, an unknown place, no coordinator, no usable resource; nothing acquired."""
    dead = free_port()  # nothing listens here
    groups = {"stm32b": {"NetworkSerialPort": {"host": "127.0.0.1", "port": dead, "protocol": "raw"}},
              "pi": {"NetworkService": {"address": "127.0.0.1", "username": "pi", "port": dead}}}
    model = mlp_t2_blob
    with farm.exporter("lab2", groups):
        farm.place("busy-stm32", "lab2/stm32b/NetworkSerialPort")
        farm.place("pi-only", "lab2/pi/NetworkService")
        url = f"labgrid://busy-stm32?coordinator={farm.address}"

        farm.client("-p", "busy-stm32", "acquire", user="alice")
        with pytest.raises(DeviceError, match=r"place 'busy-stm32' is in use: acquired by \S+/alice"):
            deploy("stm32h7", model, connect=url)
        assert farm.acquired_by("busy-stm32").endswith("/alice")  # still alice's
        farm.client("-p", "busy-stm32", "release", user="alice")

        res = CliRunner().invoke(main, ["deploy", "--target", "stm32h7", "--connect",
                                        f"labgrid://nope?coordinator={farm.address}", str(model)])
        assert res.exit_code == 3 and "no place 'nope' on coordinator" in res.output
        assert "Traceback" not in res.output

        with pytest.raises(DeviceError, match="labgrid coordinator 127.0.0.1:.* unreachable"):
            deploy("stm32h7", model, connect=f"labgrid://busy-stm32?coordinator=127.0.0.1:{free_port()}")

        with pytest.raises(DeviceError, match=r"'pi-only' has no NetworkSerialPort \(its resources: NetworkService\)"):
            deploy("stm32h7", model, connect=f"labgrid://pi-only?coordinator={farm.address}")
        assert farm.acquired_by("pi-only") == "None"

        # the board behind the place is dead: a device error, and the place is released
        with pytest.raises(DeviceError, match=f"socket://127.0.0.1:{dead}"):
            deploy("stm32h7", model, connect=url)
        assert farm.acquired_by("busy-stm32") == "None"

        # a place the user acquired by hand is used and left acquired for them
        farm.client("-p", "busy-stm32", "acquire")
        with pytest.raises(DeviceError, match=f"socket://127.0.0.1:{dead}"):
            deploy("stm32h7", model, connect=url)
        assert farm.acquired_by("busy-stm32") != "None"
        farm.client("-p", "busy-stm32", "release")
    with pytest.raises(DeviceError, match="matches lab2/stm32b/NetworkSerialPort, which no exporter offers now"):
        deploy("stm32h7", model, connect=url)  # the exporter is gone
    assert list(private_tmp.iterdir()) == []


@pytest.mark.parametrize("url,message", [
    ("labgrid://", "expected labgrid://PLACE"),
    ("labgrid://a/b", "expected labgrid://PLACE"),
    ("labgrid://a?power=off", "power must be one of on, cycle"),
    ("labgrid://a?power=on&boot_timeout=soon", "boot_timeout must be a number of seconds"),
    ("labgrid://a?baud=9600", "unknown option 'baud' for labgrid://"),
    ("labgrid://a?serial=x&serial=y", "an option is given twice"),
])
def test_url_mistakes(url, message):
    with pytest.raises(DeviceError, match=message):
        LabgridPlace(url)


class Relay(BaseHTTPRequestHandler):
    """A network power switch on 127.0.0.1 speaking labgrid's `simplerest` model: GET /relay/INDEX/VALUE
    calls `server.switch(index, on)`. A test double for the switch hardware only; labgrid's own
    NetworkPowerDriver drives it."""

    def do_GET(self):  # http.server calls do_<METHOD>
        *_, index, value = self.path.split("/")
        self.server.switch(int(index), value == "1")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class PoweredSshd(Sshd):
    """The "Pi" behind the relay: power off kills its sshd, power on brings it back after a boot delay."""

    boot_s = 1.5

    def switch(self, index: int, on: bool) -> None:
        self.switched.append((index, on))
        if not on:
            self.kill()
        else:
            self.booting = threading.Timer(self.boot_s, self.boot)
            self.booting.start()

    def boot(self) -> None:
        log = open(self.root / "sshd.log", "ab")  # noqa: SIM115 - lives as long as sshd
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.root / "sshd_config")], stdout=log,
                                     stderr=log, start_new_session=True)


@needs_labgrid
@pytest.mark.skipif(sshd_problem() is not None, reason=str(sshd_problem()))
@pytest.mark.skipif(not (shutil.which("aarch64-linux-gnu-gcc") and shutil.which("qemu-aarch64")),
                    reason="needs gcc-aarch64-linux-gnu and qemu-user (tools/bootstrap.sh)")
def test_linux_board_through_a_labgrid_network_service(farm, tmp_path):
    (tmp_path / "sshd").mkdir()
    sshd = PoweredSshd(tmp_path / "sshd").start()
    sshd.switched, sshd.booting = [], None
    relay = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    relay.switch = sshd.switch
    threading.Thread(target=relay.serve_forever, daemon=True).start()
    try:
        service = {"NetworkService": {"address": "127.0.0.1", "username": sshd.user, "port": sshd.port},
                   "NetworkPowerPort": {"model": "simplerest", "index": 3,
                                        "host": f"http://127.0.0.1:{relay.server_port}/relay/{{index}}/{{value}}"}}
        with farm.exporter("lab3", {"pi5": service}):
            farm.place("my-pi", "lab3/pi5/*")
            url = (f"labgrid://my-pi?coordinator={farm.address}&identity={sshd.client_key}"
                   f"&known_hosts={sshd.known_hosts}&power=cycle")
            probe = tmp_path / "hello.txt"
            probe.write_text("over labgrid\n")
            with open_transport(url) as dev:
                assert farm.acquired_by("my-pi") != "None"
                dev.push(probe, "hello.txt")
                res = dev.run(["cat", "hello.txt"], timeout=30)
                assert res.returncode == 0 and res.stdout == b"over labgrid\n"
                dev.install(["hello.txt"], str(tmp_path / "installed"))  # the "Pi" is this host: look directly
                assert (tmp_path / "installed" / "hello.txt").read_text() == "over labgrid\n"
                desc = dev.describe()
                assert desc["scheme"] == "labgrid" and desc["labgrid_place"] == "my-pi" and desc["port"] == sshd.port
            assert farm.acquired_by("my-pi") == "None"
            assert sshd.switched == [(3, False), (3, True)]  # power-cycled by labgrid, waited for the boot

            # the whole rpi5 deploy through the place: the aarch64 runner runs on the "Pi" under qemu-aarch64
            cfg = tmp_path / "cfg"
            cfg.mkdir()
            (cfg / "devices.toml").write_text(
                f'[lab-pi]\ntarget = "rpi5"\nconnect = "{url.replace("&power=cycle", "")}"\n'
                'exec_wrapper = ["qemu-aarch64", "-cpu", "cortex-a76"]\n')
            res = CliRunner().invoke(main, ["deploy", "--device", "lab-pi", str(DIGITS_MODELS / "mlp_t2_qat.pt2"),
                                            "--calib", str(DIGITS_MODELS / "mlp_data.npz"), "--runs", "2", "--json"],
                                     env={"EDGEQ_CONFIG_DIR": str(cfg)})
            assert res.exit_code == 0, res.output
            report = json.loads(res.output[res.output.index("{"):])
            assert report["device"]["scheme"] == "labgrid" and report["device"]["name"] == "lab-pi"
            assert report["device"]["emulated"] and report["accuracy"]["passed"] and report["accuracy"]["max_abs_err"] == 0
            assert farm.acquired_by("my-pi") == "None"
            with pytest.raises(DeviceError, match="unknown option 'bogus' for labgrid://"):
                open_transport(f"labgrid://my-pi?bogus=1&coordinator={farm.address}")
    finally:
        relay.shutdown()
        relay.server_close()
        if sshd.booting is not None:
            sshd.booting.join()
        sshd.kill()
