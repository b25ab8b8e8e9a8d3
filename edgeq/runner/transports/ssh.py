"""`ssh://[user@]host[:port]` through the OpenSSH client, so ~/.ssh/config, agents and keys just work.

Security defaults: BatchMode (never prompt), StrictHostKeyChecking=yes (an unknown or changed
host key is an error, not a question). Options: `identity=KEYFILE`, `known_hosts=FILE`,
`strict=yes|accept-new|no`, `tmpdir=DIR` (where the workdir is made, default $TMPDIR or /tmp).
One master connection (ControlMaster) carries every command; it is closed by close(), and exits
by itself after 5 idle minutes if the caller dies without closing.
Files travel as the stdin/stdout of `cat`, so the device needs no sftp-server or scp.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import weakref
from math import ceil
from pathlib import Path
from urllib.parse import unquote

from edgeq.runner.transports.base import ProcessTimeout, last_line, run_process, temp_name
from edgeq.runner.transports.remote import RemoteShellTransport, file_mode, q

_REASONS = [  # (pattern in ssh's stderr, what it means for the user)
    (r"Connection refused", "unreachable: connection refused"),
    (r"Could not resolve hostname", "unknown host name"),
    (r"timed out|No route to host|Network is unreachable", "unreachable"),
    (r"Permission denied", "authentication refused: the device did not accept the key"),
    (r"REMOTE HOST IDENTIFICATION HAS CHANGED", "host key CHANGED since it was recorded in known_hosts"),
    (r"Host key verification failed|host key is known",
     "host key not in known_hosts (strict checking is on: add it, or pass known_hosts=FILE)"),
    (r"closed by remote host|Connection reset|Broken pipe|Connection closed|mux_client|Control socket",
     "connection lost"),
]


def explain_ssh(stderr: bytes) -> str:
    text = stderr.decode(errors="replace")
    for pattern, reason in _REASONS:
        if re.search(pattern, text):
            return f"{reason} ({last_line(stderr)})"
    return last_line(stderr)


def _stop_master(base: list[str], dest: str, control_dir: str) -> None:
    """Ends the master connection and removes its socket directory; safe to call twice."""
    if os.path.exists(os.path.join(control_dir, "cm")):
        try:
            subprocess.run([*base, "-O", "exit", dest], stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=10, check=False)
        except subprocess.TimeoutExpired:  # the master exits by itself after ControlPersist
            pass
    shutil.rmtree(control_dir, ignore_errors=True)


class SshTransport(RemoteShellTransport):
    scheme = "ssh"
    options = frozenset({"identity", "known_hosts", "strict", "tmpdir"})
    default_tmpdir = "${TMPDIR:-/tmp}"
    _stop: weakref.finalize | None = None

    def _open(self) -> None:
        parts = self.parts
        if not parts.hostname or parts.path.strip("/") or parts.password:
            raise self.error("expected ssh://[user@]host[:port] (keys only, no password or path)")
        ssh = shutil.which("ssh")
        if ssh is None:
            raise self.error("the OpenSSH client `ssh` is not installed")
        strict = self.opts.get("strict", "yes")
        if strict not in ("yes", "accept-new", "no"):
            raise self.error(f"strict must be yes, accept-new or no, not {strict!r}")
        self.host = parts.hostname
        self.dest = parts.hostname
        opts = ["-o", "BatchMode=yes", "-o", f"StrictHostKeyChecking={strict}",
                "-o", f"ConnectTimeout={max(1, ceil(self.timeout))}", "-o", "ServerAliveInterval=5",
                "-o", "ServerAliveCountMax=3", "-o", "LogLevel=ERROR"]
        if parts.port is not None:
            opts += ["-o", f"Port={parts.port}"]
        if parts.username:
            opts += ["-o", f"User={unquote(parts.username)}"]
        for key, ssh_option in (("identity", "IdentityFile"), ("known_hosts", "UserKnownHostsFile")):
            if key in self.opts:
                path = os.path.abspath(os.path.expanduser(self.opts[key]))
                if not os.path.isfile(path):
                    raise self.error(f"{key} file {path} does not exist")
                opts += ["-o", f"{ssh_option}={path}"]
        if "identity" in self.opts:
            opts += ["-o", "IdentitiesOnly=yes"]
        self.control_dir = tempfile.mkdtemp(prefix="edgeq-ssh-")  # short: socket paths max ~100 chars
        self.base = [ssh, *opts, "-o", f"ControlPath={self.control_dir}/cm"]
        self._stop = weakref.finalize(self, _stop_master, self.base, self.dest, self.control_dir)
        self.connect()
        self.make_workdir()

    def connect(self) -> None:
        """Opens the master connection; auth and host-key failures surface here, once."""
        argv = [*self.base, "-o", "ControlMaster=auto", "-o", "ControlPersist=300", self.dest, "true"]
        try:
            rc, _, err, _ = run_process(argv, self.timeout + 5)
        except ProcessTimeout:
            raise self.error(f"unreachable: no answer within {self.timeout:g} s") from None
        if rc != 0:
            raise self.error(explain_ssh(err))

    def shell_argv(self, script: str) -> list[str]:
        return [*self.base, "-o", "ControlMaster=no", self.dest, script]

    def explain(self, stderr: bytes) -> str:
        return explain_ssh(stderr)

    def push(self, local_path: str | os.PathLike[str], remote_name: str) -> None:
        name = self.check_name(remote_name)
        tmp = f"{self._wd}/{temp_name(name)}"
        what = f"push of {os.fspath(local_path)}"
        try:
            with open(local_path, "rb") as src:
                size = os.fstat(src.fileno()).st_size
                # cat ends early (not with an error) if the connection drops: check the length.
                self.check(f"cat > {q(tmp)} && [ $(wc -c < {q(tmp)}) -eq {size} ] "
                           f"|| {{ rm -f {q(tmp)}; echo 'incomplete upload' >&2; false; }}", what, stdin=src)
        except OSError as e:
            raise self.error(f"{what} failed: {e.strerror}") from None
        self.commit(tmp, name, file_mode(local_path))

    def pull(self, remote_name: str, local_path: str | os.PathLike[str]) -> None:
        src = self.path(remote_name)

        def fetch(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                try:  # cat's own status, or 255 from ssh: any non-zero means incomplete
                    rc, _, err, _ = run_process(self.shell_argv(f"cat {q(src)}"), self.timeout, stdout=out)
                except ProcessTimeout:
                    raise self.error(f"pull of {remote_name} timed out after {self.timeout:g} s") from None
            if rc != 0:
                raise self.error(f"pull of {remote_name} failed: {self.explain(err)}")

        self.pull_via(remote_name, local_path, fetch)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "port": self.parts.port or 22, "user": self.parts.username}

    def _cleanup(self) -> None:
        try:
            self.remove_workdir()
        finally:
            if self._stop is not None:
                self._stop()
