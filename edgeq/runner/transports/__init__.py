"""Reach a device by URL, pyserial-style: the scheme picks the module, the rest says where.

    with open_transport("qemu-user://cortex-a76") as dev:
        dev.push("build/edgeq_run", "edgeq_run")
        result = dev.run(["./edgeq_run", "model.edgeq"], timeout=60)

Options go in the query (`ssh://pi@board?identity=~/.ssh/lab`) or in `options`.
Byte streams for microcontrollers (serial://, socket://, ...) have no files or processes:
open them with `open_stream` instead.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

from edgeq.errors import DeviceError
from edgeq.runner.transports.base import DeviceTimeout, RunResult, Transport
from edgeq.runner.transports.stream import STREAM_SCHEMES, Stream, open_stream

__all__ = ["SCHEMES", "DeviceTimeout", "RunResult", "Stream", "Transport", "open_stream", "open_transport"]

SCHEMES = {  # scheme -> "module:class", imported only when used
    "local": "local:LocalTransport",
    "qemu-user": "local:QemuUserTransport",
    "ssh": "ssh:SshTransport",
    "adb": "adb:AdbTransport",
    "labgrid": "labgrid:LabgridTransport",  # a labgrid place's NetworkService, over ssh://
}
DEFAULT_TIMEOUT_S = 60.0


def open_transport(url: str, *, exec_wrapper: list[str] | None = None, timeout: float = DEFAULT_TIMEOUT_S,
                   options: Mapping[str, str] | None = None) -> Transport:
    """Connects to the device at `url` and creates a private workdir there.

    `exec_wrapper` is prepended to every command run on the device (e.g. `qemu-aarch64 -cpu
    cortex-a76` on an x86 box reached over SSH); `timeout` bounds each connect, transfer and
    housekeeping step (run() takes its own). Raises DeviceError for anything wrong with the URL
    or the device.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a non-numeric or out-of-range port
        query = parse_qsl(parts.query, strict_parsing=True) if parts.query else []
    except ValueError as e:
        raise DeviceError(f"{url}: malformed URL ({e})") from None
    if "://" not in url:
        raise DeviceError(f"{url}: not a device URL (expected SCHEME://..., e.g. qemu-user://cortex-a76)")
    if parts.scheme in STREAM_SCHEMES:
        raise DeviceError(f"{url}: {parts.scheme}:// is a byte stream for microcontrollers, not a transport "
                          "with files and processes (open it with open_stream)")
    if parts.scheme == "qemu-system":
        raise DeviceError(f"{url}: qemu-system:// boots microcontroller firmware, it is not a transport with files "
                          "and processes (edgeq deploy --target <mcu board>, or "
                          "edgeq.runner.transports.qemu_system.QemuSystemBoard)")
    if parts.scheme not in SCHEMES:
        known = ", ".join(f"{s}://" for s in [*SCHEMES, *sorted(STREAM_SCHEMES), "qemu-system"])
        raise DeviceError(f"{url}: unknown scheme {parts.scheme!r} (known: {known})")
    merged = dict(query)
    if len(merged) != len(query):
        raise DeviceError(f"{url}: an option is given twice")
    merged.update(options or {})
    module, cls = SCHEMES[parts.scheme].split(":")
    transport_cls = getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    return transport_cls(url, parts, merged, exec_wrapper=exec_wrapper, timeout=timeout)
