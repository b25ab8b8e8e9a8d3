"""The Transport interface shared by every URL scheme, and the helpers they have in common.

A transport knows *how* to reach a device (the URL says *where*); the runner only says *what*:
push files into a private working directory, run a command there with a timeout, pull results
back, clean up. Every failure a user can meet is raised as `DeviceError` naming the URL.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shlex
import signal
import subprocess
import tempfile
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, ClassVar, Self
from urllib.parse import SplitResult

from edgeq.errors import DeviceError

log = logging.getLogger(__name__)

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+-]*")


@dataclass(frozen=True)
class RunResult:
    """What a command did on the device; `wall_s` is host-side wall time, transport overhead included.

    A command killed by signal N has returncode 128 + N on every transport, as a shell reports it.
    """

    returncode: int
    stdout: bytes
    stderr: bytes
    wall_s: float


class DeviceTimeout(DeviceError):
    """A command or transfer outlived its timeout; it was killed (a hang, not a lost device)."""


class ProcessTimeout(Exception):
    """A local process outlived its timeout and was killed with its whole process group."""


def run_process(
    argv: list[str],
    timeout: float,
    *,
    cwd: str | None = None,
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, bytes, bytes, float]:
    """Runs argv in its own session so a timeout can kill it and everything it started.

    Returns (returncode, stdout, stderr, wall seconds); raises ProcessTimeout after killing,
    and OSError if argv[0] cannot be started.
    Output goes to temp files, not pipes: whoever inherits them (a grandchild that left the
    group, an ssh master that took the fds over) cannot make us wait. `stdout` may be a file
    to stream into, then the returned stdout is empty. `env` replaces the environment.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(argv, cwd=cwd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                                stdout=stdout or out, stderr=err, env=env, start_new_session=True)
        try:
            rc = proc.wait(timeout)
        except BaseException as e:  # the timeout, or Ctrl-C: leave nothing running either way
            kill_group(proc.pid)
            proc.wait()
            if isinstance(e, subprocess.TimeoutExpired):
                raise ProcessTimeout() from None
            raise
        wall = time.monotonic() - t0
        out.seek(0)
        err.seek(0)
        return rc, out.read(), err.read(), wall


def kill_group(pgid: int) -> None:
    """SIGKILLs a process group that may already be gone."""
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Holds SIGINT/SIGTERM back until the block ends, so a Ctrl-C cannot split a multi-step
    commit; a signal that came meanwhile is raised right after (KeyboardInterrupt for Ctrl-C).

    Python runs signal handlers in the main thread only, so only there can they be swapped (a
    thread mask would not do: the kernel hands a process signal to any thread that accepts it).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {s: signal.signal(s, lambda signum, _frame: pending.append(signum))
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if pending:
            signal.raise_signal(pending[0])


def last_line(data: bytes) -> str:
    """The last non-empty line of a tool's stderr: where ssh/adb/qemu put the actual reason."""
    lines = [ln.strip() for ln in data.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


def emulated_by(wrapper: list[str]) -> bool:
    """An exec wrapper that is a qemu user-mode emulator means timings are emulated, not measured."""
    return bool(wrapper) and os.path.basename(wrapper[0]).startswith("qemu-")


def temp_name(name: str) -> str:
    """A hidden, unique sibling name: uploads land here first and are renamed into place."""
    return f".{name}.edgeq-tmp-{secrets.token_hex(4)}"


class Transport(ABC):
    """A device reached through one URL: a private workdir plus push / run / pull / remove."""

    scheme: ClassVar[str]
    options: ClassVar[frozenset[str]] = frozenset()  # query/keyword options this scheme accepts

    def __init__(self, url: str, parts: SplitResult, options: Mapping[str, str], *,
                 exec_wrapper: list[str] | None, timeout: float):
        unknown = sorted(set(options) - self.options)
        if unknown:
            known = ", ".join(sorted(self.options)) or "none"
            raise DeviceError(f"{url}: unknown option {unknown[0]!r} for {self.scheme}:// (known: {known})")
        self.url = url
        self.parts = parts
        self.opts = dict(options)
        self.exec_wrapper = list(exec_wrapper or [])
        self.timeout = timeout
        self.host = "localhost"
        self._closed = False
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    # -- the interface -------------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> None:
        """Checks the URL, connects and creates the workdir; `_cleanup` must cope if it stops midway."""

    @abstractmethod
    def workdir(self) -> str:
        """Absolute path of this session's private directory on the device."""

    @abstractmethod
    def push(self, local_path: str | os.PathLike[str], remote_name: str) -> None:
        """Copies a file into the workdir atomically, keeping its permission bits.

        The data goes to a temp name first and is renamed over `remote_name` only when complete,
        so a failed push leaves any previous file of that name untouched.
        """

    @abstractmethod
    def run(self, argv: list[str], timeout: float) -> RunResult:
        """Runs argv (exec wrapper first) in the workdir; kills it and raises DeviceError at timeout.

        A non-zero exit status is returned, not raised: only the transport failing raises.
        """

    @abstractmethod
    def pull(self, remote_name: str, local_path: str | os.PathLike[str]) -> None:
        """Copies a workdir file to local_path via a local temp file and os.replace."""

    @abstractmethod
    def install(self, names: list[str], dest: str) -> None:
        """Copies workdir files into the device directory `dest` (made if missing) so that a reader
        sees either all the old files or all the new ones: each is staged under a hidden temp name
        in `dest`, then all are renamed in one step that Ctrl-C cannot split. An interrupted or
        failed install leaves `dest` as it was, temp files removed."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Deletes a workdir file if it exists."""

    @abstractmethod
    def _cleanup(self) -> None:
        """Removes the workdir and drops the connection; may raise, close() logs it."""

    def describe(self) -> dict[str, object]:
        """Facts a report needs about where the code ran."""
        return {"scheme": self.scheme, "host": self.host,
                "emulated": emulated_by(self.exec_wrapper), "url": self.url}

    def close(self) -> None:
        """Best effort: a device that is already gone must not mask the error that brought us here."""
        if self._closed:
            return
        self._closed = True
        try:
            self._cleanup()
        except (DeviceError, OSError) as e:
            log.warning("cleanup failed: %s", e)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- helpers for subclasses ----------------------------------------------------------------
    def error(self, message: str) -> DeviceError:
        """One line naming the URL, for the CLI to print."""
        return DeviceError(f"{self.url}: {message}")

    def pull_via(self, remote_name: str, local_path: str | os.PathLike[str],
                 fetch: Callable[[Path], None]) -> None:
        """Lets `fetch` write a temp file next to local_path, then renames it: readers never see half."""
        self.check_name(remote_name)
        dest = Path(local_path)
        tmp = dest.with_name(temp_name(dest.name))
        try:
            fetch(tmp)
            os.replace(tmp, dest)
        except OSError as e:
            raise self.error(f"pull of {remote_name} failed: {e.strerror or e}") from None
        finally:
            tmp.unlink(missing_ok=True)

    def check_name(self, name: str) -> str:
        """Workdir entries are plain file names: no paths, nothing a shell could misread."""
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a plain file name: {name!r}")
        return name

    def timed_out(self, argv: list[str], timeout: float) -> DeviceTimeout:
        return DeviceTimeout(f"{self.url}: command {shlex.join(argv)!r} timed out after {timeout:g} s and was killed")
