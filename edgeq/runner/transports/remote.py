"""What ssh:// and adb:// share: a POSIX shell on the far side reached through a client binary.

Exit statuses of the client (ssh: 255 on connection errors; adb: 1 on many) collide with the
command's own, so every script prints a per-call marker with the real status as its last line:
no marker means the transport failed, whatever the client's status. Timed-out commands are
killed on the device through their process group id, which the script writes to a pid file
(sshd and adbd both start the shell as a session leader); killing the local client alone would
leave the command running remotely.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
from abc import abstractmethod
from typing import IO, ClassVar

from edgeq.errors import DeviceError
from edgeq.runner.transports.base import (
    DeviceTimeout,
    ProcessTimeout,
    RunResult,
    Transport,
    last_line,
    log,
    run_process,
    temp_name,
)

q = shlex.quote
KILL_TIMEOUT_S = 15.0  # bound on the extra round trip that kills a timed-out command


class RemoteShellTransport(Transport):
    """A device with `sh`, `mktemp`, `cat`, `wc`, `chmod`, `mv`, `rm`, `kill` (coreutils, busybox, toybox)."""

    default_tmpdir: ClassVar[str]  # a shell word, may expand variables; the tmpdir option is quoted
    _wd = ""

    @abstractmethod
    def shell_argv(self, script: str) -> list[str]:
        """Host argv that runs `script` with the device's POSIX shell."""

    @abstractmethod
    def explain(self, stderr: bytes) -> str:
        """Why the client failed, from its stderr, in a few words."""

    def workdir(self) -> str:
        return self._wd

    def path(self, name: str) -> str:
        return f"{self._wd}/{self.check_name(name)}"

    def make_workdir(self) -> None:
        tmpdir = q(self.opts["tmpdir"].rstrip("/")) if "tmpdir" in self.opts else self.default_tmpdir
        out = self.check(f"mktemp -d {tmpdir}/edgeq-XXXXXX", "creating a workdir")
        self._wd = out.decode().strip()
        if not self._wd.startswith("/"):
            raise self.error(f"creating a workdir failed: mktemp printed {self._wd!r}")

    def sh(self, script: str, what: str, *, timeout: float | None = None, stdin: IO[bytes] | None = None,
           pidfile: str | None = None) -> RunResult:
        """Runs a script; its status comes back in returncode, a lost connection raises DeviceError."""
        marker = f"edgeq-rc-{secrets.token_hex(6)}"
        lines = [f"echo $$ > {q(pidfile)} || exit 1"] if pidfile else []
        lines += [script, "rc=$?"]
        lines += [f"rm -f {q(pidfile)}"] if pidfile else []
        lines.append(f"printf '\\n{marker} %d\\n' \"$rc\"")
        timeout = self.timeout if timeout is None else timeout
        try:
            _, out, err, wall = run_process(self.shell_argv("\n".join(lines)), timeout, stdin=stdin)
        except ProcessTimeout:
            raise DeviceTimeout(f"{self.url}: {what} timed out after {timeout:g} s") from None
        m = re.search(rb"\n" + marker.encode() + rb" (\d+)\n$", out)
        if not m:
            reason = self.explain(err) if err.strip() else "connection lost (the client gave no reason)"
            raise self.error(f"{what} failed: {reason}")
        return RunResult(int(m.group(1)), out[: m.start()], err, wall)

    def check(self, script: str, what: str, *, stdin: IO[bytes] | None = None) -> bytes:
        """Like sh() but a non-zero status is an error too; returns stdout."""
        r = self.sh(script, what, stdin=stdin)
        if r.returncode != 0:
            raise self.error(f"{what} failed: {last_line(r.stderr)}")
        return r.stdout

    def commit(self, tmp: str, name: str, mode: int) -> None:
        """The atomic step of a push: permissions first, then rename over the old file."""
        self.check(f"chmod {mode:o} {q(tmp)} && mv -f {q(tmp)} {q(self.path(name))}", f"installing {name}")

    def run(self, argv: list[str], timeout: float) -> RunResult:
        pidfile = f"{self._wd}/.edgeq-run-{secrets.token_hex(4)}.pid"
        script = f"cd {q(self._wd)} || exit 1\n{shlex.join([*self.exec_wrapper, *argv])}"
        try:
            return self.sh(script, f"running {argv[0]}", timeout=timeout, pidfile=pidfile)
        except DeviceTimeout:
            self.kill_remote(pidfile)
            raise self.timed_out(argv, timeout) from None
        except KeyboardInterrupt:
            self.kill_remote(pidfile)
            raise

    def kill_remote(self, pidfile: str) -> None:
        """Kills the timed-out command's whole process group on the device (best effort)."""
        script = f"[ -s {q(pidfile)} ] && kill -s KILL -- -$(cat {q(pidfile)}); rm -f {q(pidfile)}"
        try:
            self.sh(script, "killing a timed-out command", timeout=min(self.timeout, KILL_TIMEOUT_S))
        except DeviceError as e:  # the device may be what hangs; the timeout error says enough
            log.warning("%s", e)

    def install(self, names: list[str], dest: str) -> None:
        """One script on the device; it ignores HUP/INT so a Ctrl-C on the host (which drops the
        connection) cannot stop it between the renames."""
        pairs = [(self.path(n), f"{dest}/{temp_name(n)}", f"{dest}/{n}") for n in names]
        temps = " ".join(q(t) for _, t, _ in pairs)
        script = "\n".join([
            "trap '' HUP INT TERM",
            f"mkdir -p {q(dest)} && " + " && ".join(f"cp -p {q(src)} {q(tmp)}" for src, tmp, _ in pairs)
            + f" || {{ rm -f {temps}; exit 1; }}",
            " && ".join(f"mv -f {q(tmp)} {q(final)}" for _, tmp, final in pairs)])
        self.check(script, f"installing into {dest}")

    def remove(self, name: str) -> None:
        self.check(f"rm -f {q(self.path(name))}", f"removing {name}")

    def remove_workdir(self) -> None:
        if self._wd:
            self.check(f"rm -rf {q(self._wd)}", "removing the workdir")
            self._wd = ""


def file_mode(path: str | os.PathLike[str]) -> int:
    return os.stat(path).st_mode & 0o777
