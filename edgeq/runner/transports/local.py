"""`local://` (this host) and `qemu-user://CPU` (this host, binaries run under qemu-aarch64).

Both keep files in a private temp directory on the host; they differ only in the command prefix.
Option `root=DIR` makes that directory inside DIR (default: the system temp dir), so several
emulated "devices" on one host each have their own file system.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from abc import abstractmethod
from functools import cache
from pathlib import Path

from edgeq.runner.transports.base import (
    ProcessTimeout,
    RunResult,
    Transport,
    deferred_interrupts,
    run_process,
    temp_name,
)

QEMU = "qemu-aarch64"


class _HostTransport(Transport):
    """Files live in a private host temp dir; subclasses say how a command is started."""

    _dir = ""

    def _make_workdir(self) -> None:
        root = self.opts.get("root")
        if root is not None and not os.path.isdir(root):
            raise self.error(f"root directory {root} does not exist")
        self._dir = tempfile.mkdtemp(prefix="edgeq-", dir=root)

    def workdir(self) -> str:
        return self._dir

    @abstractmethod
    def command(self, argv: list[str]) -> list[str]:
        """The full host argv for a device command."""

    def push(self, local_path: str | os.PathLike[str], remote_name: str) -> None:
        name = self.check_name(remote_name)
        tmp = os.path.join(self._dir, temp_name(name))
        try:
            shutil.copyfile(local_path, tmp)
            os.chmod(tmp, stat.S_IMODE(os.stat(local_path).st_mode))
            os.replace(tmp, os.path.join(self._dir, name))
        except OSError as e:
            raise self.error(f"push of {os.fspath(local_path)} failed: {e.strerror}") from None
        finally:
            Path(tmp).unlink(missing_ok=True)

    def run(self, argv: list[str], timeout: float) -> RunResult:
        command = self.command(argv)
        try:
            rc, out, err, wall = run_process(command, timeout, cwd=self._dir)
        except ProcessTimeout:
            raise self.timed_out(argv, timeout) from None
        except OSError as e:  # what a shell would say, so every transport reports it alike
            return RunResult(127 if isinstance(e, FileNotFoundError) else 126, b"",
                             f"{command[0]}: {e.strerror}\n".encode(), 0.0)
        return RunResult(rc if rc >= 0 else 128 - rc, out, err, wall)  # a signal reads as a shell shows it

    def pull(self, remote_name: str, local_path: str | os.PathLike[str]) -> None:
        src = os.path.join(self._dir, self.check_name(remote_name))
        self.pull_via(remote_name, local_path, lambda tmp: shutil.copyfile(src, tmp))

    def install(self, names: list[str], dest: str) -> None:
        staged = {name: os.path.join(dest, temp_name(self.check_name(name))) for name in names}
        try:
            os.makedirs(dest, exist_ok=True)
            for name, tmp in staged.items():
                shutil.copy2(os.path.join(self._dir, name), tmp)
            with deferred_interrupts():
                for name, tmp in staged.items():
                    os.replace(tmp, os.path.join(dest, name))
        except OSError as e:
            raise self.error(f"install into {dest} failed: {e.strerror or e}") from None
        finally:
            for tmp in staged.values():
                Path(tmp).unlink(missing_ok=True)

    def remove(self, name: str) -> None:
        Path(self._dir, self.check_name(name)).unlink(missing_ok=True)

    def _cleanup(self) -> None:
        if self._dir:
            shutil.rmtree(self._dir, ignore_errors=True)


class LocalTransport(_HostTransport):
    """Runs on this host, e.g. the x86 runtime or anything binfmt_misc can start."""

    scheme = "local"
    options = frozenset({"root"})

    def _open(self) -> None:
        parts = self.parts
        if parts.netloc or parts.path.strip("/"):
            raise self.error("local:// takes no host or path")
        self._make_workdir()

    def command(self, argv: list[str]) -> list[str]:
        return [*self.exec_wrapper, *argv]


@cache
def qemu_cpus() -> frozenset[str]:
    """CPU models this qemu-aarch64 knows, so a typo fails at open and not at the first run."""
    out = subprocess.run([QEMU, "-cpu", "help"], capture_output=True, text=True, timeout=30,
                         check=False).stdout
    return frozenset(line.split()[0] for line in out.splitlines()[1:] if line.strip())


class QemuUserTransport(_HostTransport):
    """Emulated Linux/aarch64: every command runs under `qemu-aarch64 -cpu CPU` on this host.

    `plugin=PATH` loads a TCG plugin (e.g. the instruction counter) with `-d plugin`, so its
    report ("total insns: N") appears on the command's stderr.
    """

    scheme = "qemu-user"
    options = frozenset({"plugin", "root"})

    def _open(self) -> None:
        parts = self.parts
        self.cpu = parts.netloc
        if not self.cpu or parts.path.strip("/"):
            raise self.error("qemu-user:// needs a CPU model and nothing else, e.g. qemu-user://cortex-a76")
        if shutil.which(QEMU) is None:
            raise self.error(f"{QEMU} is not installed (Debian: apt-get install qemu-user)")
        if self.cpu not in qemu_cpus():
            raise self.error(f"{QEMU} has no CPU model {self.cpu!r} (known: {', '.join(sorted(qemu_cpus()))})")
        self.plugin_args: list[str] = []
        if "plugin" in self.opts:
            plugin = os.path.abspath(self.opts["plugin"])
            if not os.path.isfile(plugin):
                raise self.error(f"TCG plugin {plugin} does not exist")
            self.plugin_args = ["-plugin", plugin, "-d", "plugin"]
        self._make_workdir()

    def command(self, argv: list[str]) -> list[str]:
        return [*self.exec_wrapper, QEMU, "-cpu", self.cpu, *self.plugin_args, *argv]

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "emulated": True, "cpu": self.cpu}
