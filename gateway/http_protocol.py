"""uvicorn's httptools protocol with the writes of one event-loop turn sent as one.

uvicorn writes a response's status line and headers on `http.response.start` and its body on
`http.response.body`: two `write` system calls for a one-piece JSON answer, and the client
wakes for each. On loopback a `write` carries the receiver's TCP work too, so the extra one is a
measurable part of a direct request at concurrency 1. `CoalescingTransport` holds what is
written during one turn of the event loop and hands it to the socket in one call at the end of
that turn (`call_soon`), so headers and body leave together and nothing waits longer than the
turn that wrote it. Closing the transport sends what is held first; everything else is the
transport's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_JOIN_LIMIT = 64 * 1024
"""Up to this many bytes held, one joined `write` is cheaper than `writelines`' buffer list."""


class CoalescingTransport:
    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] | None = None

    def write(self, data: bytes) -> None:
        if self._pending is None:
            self._pending = [data]
            self._loop.call_soon(self.flush)
        else:
            self._pending.append(data)

    def flush(self) -> None:
        pending, self._pending = self._pending, None
        if not pending or self._transport.is_closing():
            return
        if len(pending) == 1:
            self._transport.write(pending[0])
        elif sum(map(len, pending)) <= _JOIN_LIMIT:
            self._transport.write(b"".join(pending))
        else:
            self._transport.writelines(pending)  # one writev, no copy of a large body

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:  # asked several times per request: spared `__getattr__`
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:
        # is_closing, get_extra_info, pause_reading, set_protocol, ...: the transport's own.
        return getattr(self._transport, name)


class CoalescingHttpToolsProtocol(HttpToolsProtocol):
    """Pass as uvicorn's `http=`; the rest of uvicorn's HTTP/1.1 handling is unchanged."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(CoalescingTransport(transport, self.loop))  # type: ignore[arg-type]
