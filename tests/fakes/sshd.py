"""A real OpenSSH server for tests: 127.0.0.1 only, its own host key, config and throwaway client key."""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = "/usr/sbin/sshd"  # sshd must be started by absolute path (it re-execs itself)
PRIVSEP_DIR = Path("/run/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "edgeq-test", "-f", str(path)],
                   check=True, timeout=30)
    return path


def sshd_problem() -> str | None:
    """Why a test sshd cannot run here, or None. As root it needs the privilege separation dir."""
    if not os.path.exists(SSHD):
        return "openssh-server is not installed"
    if os.geteuid() == 0 and not PRIVSEP_DIR.is_dir():
        PRIVSEP_DIR.mkdir(mode=0o755)  # what the sshd service unit would create
    return None


def descendants(pid: int) -> list[int]:
    """All processes below pid (sshd forks one child per connection, each in its own session)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


@dataclass
class Sshd:
    """One sshd listening on 127.0.0.1:port; `kill()` drops it and every live connection at once."""

    root: Path
    port: int = field(default_factory=free_port)
    user: str = field(default_factory=getpass.getuser)
    proc: subprocess.Popen | None = None

    def start(self) -> Sshd:
        self.host_key = keygen(self.root / "host_key")
        self.client_key = keygen(self.root / "client_key")
        (self.root / "authorized_keys").write_text((self.root / "client_key.pub").read_text())
        self.known_hosts = self.root / "known_hosts"
        self.known_hosts.write_text(f"[127.0.0.1]:{self.port} {(self.root / 'host_key.pub').read_text()}")
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.host_key}",
            f"PidFile {self.root / 'sshd.pid'}", f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "UsePAM no", "StrictModes no", "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", f"AllowUsers {self.user}", "LogLevel ERROR", "MaxStartups 50", "",
        ]))
        log = open(self.root / "sshd.log", "wb")  # noqa: SIM115 - lives as long as sshd
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdout=log, stderr=log,
                                     start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"sshd did not start: {(self.root / 'sshd.log').read_text()}") from None
                time.sleep(0.05)

    def url(self, **options: str) -> str:
        opts = {"identity": str(self.client_key), "known_hosts": str(self.known_hosts), **options}
        return f"ssh://{self.user}@127.0.0.1:{self.port}?" + "&".join(f"{k}={v}" for k, v in opts.items())

    def kill(self, *, sessions_too: bool = True) -> None:
        """SIGKILLs the listener and its per-connection sshd children: the network side is gone.

        With sessions_too=False the commands those connections started live on, as on a device
        whose link dropped; they then see EOF on stdin.
        """
        if self.proc is None:
            return
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            try:
                if sessions_too or Path(f"/proc/{pid}/comm").read_text().strip() == "sshd":
                    os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, FileNotFoundError):
                pass
        self.proc.wait(10)
        self.proc = None
