"""A TCP proxy that damages a byte stream on purpose: each byte is dropped with probability `drop` and
otherwise replaced by a different random byte with probability `corrupt`, independently in each
direction, from seeded generators (a failing run can be replayed). It sits between the host's
`socket://` connection and an emulated board's UART to test resynchronisation, retries and resume.
"""

from __future__ import annotations

import random
import socket
import threading
import time
from dataclasses import dataclass
from typing import Self


@dataclass
class Direction:
    """Bytes seen and damage done in one direction."""

    bytes: int = 0
    dropped: int = 0
    corrupted: int = 0


class FaultyLink:
    """Listens on 127.0.0.1:`port` (free port by default), forwards the first client to `upstream`."""

    def __init__(self, upstream: tuple[str, int], *, drop: float = 0.002, corrupt: float = 0.002, seed: int = 0,
                 connect_timeout: float = 20.0):
        self.upstream = upstream
        self.drop = drop
        self.corrupt = corrupt
        self.seed = seed
        self.connect_timeout = connect_timeout
        self.to_device = Direction()
        self.to_host = Direction()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._socks: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def start(self) -> Self:
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self._threads.append(t)
        return self

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except OSError:
            return
        deadline = time.monotonic() + self.connect_timeout
        while True:
            try:
                board = socket.create_connection(self.upstream, timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline or self._stop.is_set():
                    client.close()
                    return
                time.sleep(0.05)
        board.settimeout(None)
        for s in (client, board):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._socks += [client, board]
        for src, dst, stats, seed in ((client, board, self.to_device, 2 * self.seed),
                                      (board, client, self.to_host, 2 * self.seed + 1)):
            t = threading.Thread(target=self._pump, args=(src, dst, stats, random.Random(seed)), daemon=True)
            t.start()
            self._threads.append(t)

    def _pump(self, src: socket.socket, dst: socket.socket, stats: Direction, rng: random.Random) -> None:
        try:
            while not self._stop.is_set():
                data = src.recv(4096)
                if not data:
                    break
                out = bytearray()
                for b in data:
                    stats.bytes += 1
                    r = rng.random()
                    if r < self.drop:
                        stats.dropped += 1
                    elif r < self.drop + self.corrupt:
                        stats.corrupted += 1
                        out.append(b ^ rng.randrange(1, 256))
                    else:
                        out.append(b)
                if out:
                    dst.sendall(out)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        for s in [self._listener, *self._socks]:
            try:
                s.close()
            except OSError:
                pass
        for t in self._threads:
            t.join(timeout=2)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
