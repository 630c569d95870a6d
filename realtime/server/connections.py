"""The TCP side of `bya serve`: how long a connection may idle and how many one client address may hold.

aiohttp keeps an idle connection 3630 s by default and takes any number of them, so a client that opens
connections and sends nothing (or half a request) holds sockets and memory for an hour each, without any
token. `start_site` runs an application with a short keep-alive (which aiohttp also applies before the
first request: headers that do not arrive in time close the connection) and refuses, by closing it at
once, a connection past `max_per_address` from one address. On loopback every client is 127.0.0.1, so
there the cap bounds the whole server.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class ConnectionLimits:
    """Per-connection timeouts and the per-address connection cap."""

    # an idle keep-alive connection, or one whose request headers are not complete, is closed after this;
    # WHIP/WHEP clients make a handful of short requests, browsers reconnect at once when closed
    keepalive_timeout_s: float = 15.0
    # connections at once from one client address: a browser opens ~6 per origin, a few pages and an
    # OBS source stay far below; a flood of idle sockets does not
    max_per_address: int = 32


class _CountedProtocol(asyncio.Protocol):
    """Forwards to aiohttp's protocol, unless its address already holds `limit` connections (then closes)."""

    def __init__(self, inner: asyncio.Protocol, counts: Counter, limit: int) -> None:
        self.inner, self.counts, self.limit = inner, counts, limit
        self.address: str | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        peer = transport.get_extra_info("peername")
        address = str(peer[0]) if peer else "?"
        if self.counts[address] >= self.limit:
            transport.abort()  # never reaches aiohttp: nothing is parsed or allocated for it
            return
        self.counts[address] += 1
        self.address = address
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.address is None:
            return
        self.counts[self.address] -= 1
        if self.counts[self.address] <= 0:
            del self.counts[self.address]
        self.inner.connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.address is not None:
            self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received() if self.address is not None else None

    def pause_writing(self) -> None:
        if self.address is not None:
            self.inner.pause_writing()

    def resume_writing(self) -> None:
        if self.address is not None:
            self.inner.resume_writing()


class LimitedSite(web.TCPSite):
    """An aiohttp TCPSite whose connections are counted per client address and capped."""

    def __init__(self, runner: web.AppRunner, host: str, port: int, max_per_address: int) -> None:
        if max_per_address < 1:
            raise ValueError(f"max_per_address must be >= 1, got {max_per_address}")
        super().__init__(runner, host, port)
        self.max_per_address = max_per_address
        self.counts: Counter = Counter()  # open connections per client address

    def _factory(self) -> Callable[[], asyncio.Protocol]:
        server = self._runner.server
        if server is None:
            raise RuntimeError("the runner is not set up")
        return lambda: _CountedProtocol(server(), self.counts, self.max_per_address)

    async def start(self) -> None:
        # TCPSite.start with our protocol factory around the runner's; BaseSite.start registers the site
        await web.BaseSite.start(self)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._factory(), self._host, self._port)
        self._bound_port = self._server.sockets[0].getsockname()[1] if self._server.sockets else self._port


async def start_site(
    app: web.Application, host: str, port: int, limits: ConnectionLimits = ConnectionLimits()
) -> web.AppRunner:
    """Serve `app` on host:port under `limits`; the caller ends it with `runner.cleanup()`."""
    runner = web.AppRunner(app, handle_signals=False, keepalive_timeout=limits.keepalive_timeout_s)
    await runner.setup()
    try:
        await LimitedSite(runner, host, port, limits.max_per_address).start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner
