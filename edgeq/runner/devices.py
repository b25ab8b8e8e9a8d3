"""The user's device inventory (~/.config/edgeq/devices.toml) and per-device locks.

    [lab-pi]
    target = "rpi5"
    connect = "ssh://pi@raspberrypi.local"
    exec_wrapper = []            # e.g. ["qemu-aarch64", "-cpu", "cortex-a76"] for a test host
    meter = "pmic"               # optional energy meter back-end
    public_key = "~/keys/fleet.pub"  # optional: deploys refuse blobs not signed by this key (docs/signing.md)
    install_dir = "/opt/edgeq"   # optional: a passing deploy installs edgeq_runner + model.edgeq here
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from edgeq.errors import DeviceError, EdgeqError

KEYS = {"target": str, "connect": str, "exec_wrapper": list, "meter": str, "public_key": str, "install_dir": str}


@dataclass
class Device:
    name: str
    target: str
    connect: str
    exec_wrapper: list[str] = field(default_factory=list)
    meter: str = ""
    public_key: str = ""  # path of the Ed25519 public key blobs for this device must be signed with
    install_dir: str = ""  # where a passing deploy installs runner + blob on the device


def inventory_path() -> Path:
    base = os.environ.get("EDGEQ_CONFIG_DIR") or os.path.join(
        os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config"), "edgeq")
    return Path(base) / "devices.toml"


def load_inventory(path: Path | None = None) -> dict[str, Device]:
    """Devices by name; a malformed file is one error naming the file and key."""
    path = path or inventory_path()
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise EdgeqError(f"{path}: not valid TOML ({e})") from None
    devices = {}
    for name, entry in data.items():
        if not isinstance(entry, dict):
            raise EdgeqError(f"{path}: [{name}] must be a table")
        for key, value in entry.items():
            if key not in KEYS:
                raise EdgeqError(f"{path}: [{name}] unknown key '{key}' (allowed: {', '.join(KEYS)})")
            if not isinstance(value, KEYS[key]):
                raise EdgeqError(f"{path}: [{name}] {key} must be a {KEYS[key].__name__}")
        for key in ("target", "connect"):
            if key not in entry:
                raise EdgeqError(f"{path}: [{name}] is missing '{key}'")
        if "install_dir" in entry and not entry["install_dir"].startswith("/"):
            raise EdgeqError(f"{path}: [{name}] install_dir must be an absolute path on the device")
        devices[name] = Device(name, entry["target"], entry["connect"], list(entry.get("exec_wrapper", [])),
                               entry.get("meter", ""), os.path.expanduser(entry.get("public_key", "")),
                               entry.get("install_dir", ""))
    return devices


def get_device(name: str, path: Path | None = None) -> Device:
    devices = load_inventory(path)
    if name not in devices:
        known = ", ".join(sorted(devices)) or "none"
        raise EdgeqError(f"no device '{name}' in {path or inventory_path()} (known: {known})")
    return devices[name]


def lock_dir() -> Path:
    d = Path(os.environ.get("XDG_RUNTIME_DIR") or "/tmp") / f"edgeq-locks-{os.getuid()}"
    d.mkdir(mode=0o700, exist_ok=True)
    return d


@contextmanager
def device_lock(url: str, wait_s: float = 600.0) -> Iterator[None]:
    """Serialises deploys to one board: an flock on a file named after the connection URL
    (released by the kernel if the process dies, so a crash never leaves a stale lock)."""

    path = lock_dir() / (hashlib.sha256(url.encode()).hexdigest()[:16] + ".lock")
    with open(path, "w") as f:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise DeviceError(f"{url}: busy, another deploy holds it (waited {wait_s:.0f} s)") from None
                time.sleep(0.2)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)
