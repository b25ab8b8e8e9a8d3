"""`labgrid://PLACE`: a board in a labgrid farm, reached through the place's own resources.

labgrid is the distributed engine here, not something edgeq rebuilds: the place is acquired, read and
released by labgrid's own `labgrid-client`, which lives in its own environment (`.venv-labgrid`, made by
tools/labgrid_env.sh) because labgrid's `pyserial-labgrid` fork installs the same `serial` module as
pyserial. From the acquired place edgeq takes:

- a `NetworkSerialPort` (host, port, protocol raw|rfc2217, speed) -> `socket://` / `rfc2217://` for an MCU;
- a `NetworkService` (address, username, port) -> `ssh://user@address:port` for a Linux board;
- a power resource, only when asked (`power=on|cycle`): switched by `labgrid-client power`.

Options (query or `options`): `coordinator=HOST:PORT` (default `$LG_COORDINATOR`, then labgrid's own
default), `power=on|cycle` (then a Linux board gets `boot_timeout` seconds, default 120, until its SSH
answers), `serial=NAME` / `ssh=NAME` to pick one of several resources, and the ssh://
options (`identity`, `known_hosts`, `strict`, `tmpdir`) passed to the SSH transport. A place tag
`emulated=true` (`labgrid-client -p PLACE set-tags emulated=true`) marks a board that is an emulator, so
reports label its timings emulated. A place we acquire is always released (errors and Ctrl-C
included); a place the user had already acquired themselves is used and left acquired.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self
from urllib.parse import SplitResult, parse_qsl, quote, urlsplit

from edgeq.errors import DeviceError
from edgeq.runner.transports.base import ProcessTimeout, RunResult, Transport, last_line, run_process
from edgeq.runner.transports.stream import Stream, open_stream

log = logging.getLogger(__name__)

SSH_OPTIONS = frozenset({"identity", "known_hosts", "strict", "tmpdir"})
OPTIONS = frozenset({"coordinator", "power", "boot_timeout", "serial", "ssh"}) | SSH_OPTIONS
POWER_ACTIONS = ("on", "cycle")
CLIENT_TIMEOUT_S = 30.0
BOOT_TIMEOUT_S = 120.0  # after a power switch, how long a Linux board may take until its SSH answers
DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid-client's own default
_SERIAL_SCHEMES = {"raw": "socket", "rfc2217": "rfc2217"}


def client_path() -> str:
    """labgrid-client: $EDGEQ_LABGRID_CLIENT, the checkout's .venv-labgrid, or the PATH."""
    if os.environ.get("EDGEQ_LABGRID_CLIENT"):
        return os.environ["EDGEQ_LABGRID_CLIENT"]
    venv = Path(__file__).resolve().parents[3] / ".venv-labgrid" / "bin" / "labgrid-client"
    if venv.is_file():
        return str(venv)
    found = shutil.which("labgrid-client")
    if found is None:
        raise DeviceError("labgrid-client not found: run tools/labgrid_env.sh (it creates .venv-labgrid), or set "
                          "EDGEQ_LABGRID_CLIENT to a labgrid-client installed in its own environment")
    return found


def split_url(url: str) -> tuple[str, dict[str, str]]:
    """(place name, options) of labgrid://PLACE[?k=v&...]."""
    try:
        parts = urlsplit(url)
        query = parse_qsl(parts.query, strict_parsing=True) if parts.query else []
    except ValueError as e:
        raise DeviceError(f"{url}: malformed URL ({e})") from None
    if parts.scheme != "labgrid" or not parts.netloc or parts.path.strip("/"):
        raise DeviceError(f"{url}: expected labgrid://PLACE[?coordinator=HOST:PORT]")
    options = dict(query)
    if len(options) != len(query):
        raise DeviceError(f"{url}: an option is given twice")
    return parts.netloc, options


class LabgridPlace:
    """An acquired labgrid place and the resources it holds; `close()` releases it if we acquired it."""

    def __init__(self, url: str, options: Mapping[str, str] | None = None, *, timeout: float = CLIENT_TIMEOUT_S):
        self.url = url
        self.name, opts = split_url(url)
        opts.update(options or {})
        unknown = sorted(set(opts) - OPTIONS)
        if unknown:
            raise DeviceError(f"{url}: unknown option {unknown[0]!r} for labgrid:// (known: {', '.join(sorted(OPTIONS))})")
        if opts.get("power", "on") not in POWER_ACTIONS:
            raise DeviceError(f"{url}: power must be one of {', '.join(POWER_ACTIONS)}, not {opts['power']!r}")
        try:
            self.boot_timeout = float(opts.get("boot_timeout", BOOT_TIMEOUT_S))
        except ValueError:
            raise DeviceError(f"{url}: boot_timeout must be a number of seconds, not {opts['boot_timeout']!r}") from None
        self.opts = opts
        self.timeout = timeout
        self.coordinator = opts.get("coordinator") or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR
        self.client = client_path()
        self.ours = False  # we acquired it, so we release it
        self.resources: list[tuple[str, dict]] = []
        self.tags: dict[str, str] = {}
        self._acquire()

    # -- labgrid-client ------------------------------------------------------------------------
    def _argv(self, *command: str) -> list[str]:
        coordinator = ["-x", self.opts["coordinator"]] if self.opts.get("coordinator") else []
        return [self.client, *coordinator, "-p", self.name, *command]

    def _client(self, *command: str) -> tuple[int, str, str]:
        """Runs labgrid-client; (returncode, stdout, stderr). LG_ENV/LG_PLACE would redirect it elsewhere."""
        env = {k: v for k, v in os.environ.items() if k not in ("LG_ENV", "LG_PLACE", "LG_STATE")}
        if self.opts.get("coordinator"):
            env.pop("LG_COORDINATOR", None)
        try:
            rc, out, err, _ = run_process(self._argv(*command), self.timeout, env=env)
        except ProcessTimeout:
            raise DeviceError(f"{self.url}: labgrid-client {command[0]} got no answer from coordinator "
                              f"{self.coordinator} within {self.timeout:g} s") from None
        except OSError as e:
            raise DeviceError(f"{self.url}: cannot run {self.client}: {e.strerror or e}") from None
        return rc, out.decode(errors="replace"), err.decode(errors="replace")

    def _explain(self, command: str, stderr: str) -> DeviceError:
        """labgrid's message turned into what the user should know and do."""
        if "Could not connect to coordinator" in stderr or "coordinator is unavailable" in stderr:
            return DeviceError(f"{self.url}: labgrid coordinator {self.coordinator} unreachable (is labgrid-coordinator "
                               "running? pass ?coordinator=HOST:PORT or set LG_COORDINATOR)")
        if re.search(r"place pattern \S+ matches nothing", stderr):
            return DeviceError(f"{self.url}: no place {self.name!r} on coordinator {self.coordinator} "
                               "(`labgrid-client places` lists them)")
        m = re.search(r"already acquired by (\S+?)\.", stderr)
        if m:
            return DeviceError(f"{self.url}: place {self.name!r} is in use: acquired by {m.group(1)} "
                               "(wait until they release it)")
        m = re.search(r"Match (\S+) has no matching remote resource", stderr)
        if m:
            return DeviceError(f"{self.url}: place {self.name!r} matches {m.group(1)}, which no exporter offers "
                               "now (is its labgrid-exporter running?)")
        if "no compatible resource" in stderr:
            return DeviceError(f"{self.url}: place {self.name!r} has no power resource labgrid can switch")
        return DeviceError(f"{self.url}: labgrid-client {command} failed: {last_line(stderr.encode())}")

    def _acquire(self) -> None:
        try:
            rc, _, err = self._client("acquire")
        except BaseException:  # a timeout or Ctrl-C: the coordinator may have granted it all the same
            self.release(even_if_unsure=True)
            raise
        if rc == 0:
            self.ours = True
        elif "You have already acquired place" in err:
            log.info("%s: place %s was already acquired by you: used, and left acquired", self.url, self.name)
        else:
            raise self._explain("acquire", err)
        try:
            self._read_place()
            if "power" in self.opts:
                self.power(self.opts["power"])
        except BaseException:  # Ctrl-C included: a place we acquired must not stay acquired
            self.release()
            raise

    def _read_place(self) -> None:
        """The acquired resources (from `env`, labgrid's machine-readable view) and the place's tags."""
        try:
            import yaml  # PyYAML: edgeq's `labgrid` extra (labgrid itself stays in .venv-labgrid)
        except ImportError:
            raise DeviceError(f"{self.url}: reading a labgrid place needs PyYAML (pip install 'edgeq[labgrid]')") from None

        rc, out, err = self._client("env")
        if rc != 0:
            raise self._explain("env", err)
        try:
            target = yaml.safe_load(out)["targets"][self.name]
            self.resources = [(cls, dict(args or {})) for entry in target.get("resources") or []
                              for cls, args in entry.items()]
        except (yaml.YAMLError, KeyError, TypeError, AttributeError) as e:
            raise DeviceError(f"{self.url}: unexpected `labgrid-client env` output ({e})") from None
        rc, out, err = self._client("show")
        if rc != 0:
            raise self._explain("show", err)
        m = re.search(r"^\s*tags: (.*)$", out, re.MULTILINE)
        if m:
            self.tags = dict(pair.split("=", 1) for pair in m.group(1).split(", ") if "=" in pair)

    def power(self, action: str) -> None:
        """Switches the place's power through labgrid's own power drivers."""
        rc, _, err = self._client("power", action)
        if rc != 0:
            raise self._explain(f"power {action}", err)

    def release(self, even_if_unsure: bool = False) -> None:
        """Releases a place we acquired (labgrid refuses to release another user's); logs, never raises."""
        if not (self.ours or even_if_unsure):
            return
        try:
            rc, _, err = self._client("release")
        except DeviceError as e:
            rc, err = 1, str(e)
        if rc != 0 and "is not acquired" not in err:
            log.warning("%s: could not release place %s (%s): run `labgrid-client -p %s release`", self.url,
                        self.name, last_line(err.encode()), self.name)
        self.ours = False

    # -- what the place offers -----------------------------------------------------------------
    @property
    def emulated(self) -> bool:
        return self.tags.get("emulated", "").lower() in ("1", "true", "yes")

    def _pick(self, cls: str, option: str) -> dict:
        found = [(args.get("name", cls), args) for c, args in self.resources if c == cls]
        wanted = self.opts.get(option)
        if wanted:
            found = [(n, a) for n, a in found if n == wanted]
        if not found:
            have = ", ".join(sorted({c for c, _ in self.resources})) or "none"
            which = f" named {wanted!r}" if wanted else ""
            raise DeviceError(f"{self.url}: place {self.name!r} has no {cls}{which} (its resources: {have})")
        if len(found) > 1:
            names = ", ".join(n for n, _ in found)
            raise DeviceError(f"{self.url}: place {self.name!r} has several {cls} resources ({names}): "
                              f"pick one with ?{option}=NAME")
        return found[0][1]

    def serial_url(self) -> tuple[str, int]:
        """(pyserial URL, baud rate) of the place's NetworkSerialPort."""
        port = self._pick("NetworkSerialPort", "serial")
        protocol = port.get("protocol", "rfc2217")
        if protocol not in _SERIAL_SCHEMES:
            raise DeviceError(f"{self.url}: NetworkSerialPort protocol {protocol!r} is not supported "
                              "(raw or rfc2217)")
        if not port.get("host") or not port.get("port"):
            raise DeviceError(f"{self.url}: the place's NetworkSerialPort has no host/port (is ser2net running on "
                              "the exporter?)")
        return f"{_SERIAL_SCHEMES[protocol]}://{_netloc(port['host'], port['port'])}", int(port.get("speed", 115200))

    def open_stream(self, timeout: float = 1.0) -> Stream:
        url, baud = self.serial_url()
        return open_stream(url, baud, timeout=timeout)

    def ssh_url(self) -> str:
        """ssh://user@address:port of the place's NetworkService (keys only: a password is not used)."""
        service = self._pick("NetworkService", "ssh")
        user = quote(str(service.get("username", "")), safe="")
        netloc = _netloc(str(service["address"]), int(service.get("port", 22)))
        query = "&".join(f"{k}={quote(v, safe='/~.')}" for k, v in sorted(self.opts.items()) if k in SSH_OPTIONS)
        return f"ssh://{user + '@' if user else ''}{netloc}" + (f"?{query}" if query else "")

    def describe(self) -> dict[str, object]:
        return {"labgrid_place": self.name, "labgrid_coordinator": self.coordinator}

    def close(self) -> None:
        self.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _netloc(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class LabgridTransport(Transport):
    """A Linux board of a labgrid place: its NetworkService over the SSH transport, the place held meanwhile."""

    scheme = "labgrid"
    options = OPTIONS

    def __init__(self, url: str, parts: SplitResult, options: Mapping[str, str], *,
                 exec_wrapper: list[str] | None, timeout: float):
        self.place: LabgridPlace | None = None
        self.inner: Transport | None = None
        super().__init__(url, parts, options, exec_wrapper=exec_wrapper, timeout=timeout)

    def _open(self) -> None:
        from edgeq.runner.transports.ssh import SshTransport

        self.place = LabgridPlace(self.url.split("?", 1)[0], self.opts)
        ssh = self.place.ssh_url()
        ssh_parts = urlsplit(ssh)
        booting_until = time.monotonic() + (self.place.boot_timeout if "power" in self.opts else 0)
        while True:  # a board just switched on refuses connections until it has booted
            try:
                self.inner = SshTransport(ssh, ssh_parts, dict(parse_qsl(ssh_parts.query)),
                                          exec_wrapper=self.exec_wrapper, timeout=self.timeout)
                break
            except DeviceError as e:
                if "unreachable" not in str(e) or time.monotonic() > booting_until:
                    raise
                time.sleep(1.0)
        self.host = self.inner.host

    def workdir(self) -> str:
        return self.inner.workdir()

    def push(self, local_path: str | os.PathLike[str], remote_name: str) -> None:
        self.inner.push(local_path, remote_name)

    def run(self, argv: list[str], timeout: float) -> RunResult:
        return self.inner.run(argv, timeout)

    def pull(self, remote_name: str, local_path: str | os.PathLike[str]) -> None:
        self.inner.pull(remote_name, local_path)

    def install(self, names: list[str], dest: str) -> None:
        self.inner.install(names, dest)

    def remove(self, name: str) -> None:
        self.inner.remove(name)

    def describe(self) -> dict[str, object]:
        desc = {**(self.inner.describe() if self.inner else {}), **self.place.describe(), "url": self.url,
                "scheme": self.scheme}
        desc["emulated"] = bool(desc.get("emulated")) or self.place.emulated
        return desc

    def _cleanup(self) -> None:
        try:
            if self.inner is not None:
                self.inner.close()
        finally:
            if self.place is not None:
                self.place.close()
