"""A minimal HTTP/1.1 client for the direct forwards (and the telemetry exporter's posts to the
collector): keep-alive pools on asyncio Protocols and httptools' parser, nothing else.

The direct path makes one POST per request to a handful of provider hosts; aiohttp's general
client (cookies, redirects, tracing, per-request timers and tasks) cost more CPU than the rest
of the gateway's request path. This one writes the request in one `write`, parses the answer in
C, and keeps idle connections per host. Timeouts are the caller's (the router's
`asyncio.timeout`): a request cancelled midway closes its connection instead of reusing it.
"""

from __future__ import annotations

import asyncio
import ssl
import time
import zlib
from collections import deque
from collections.abc import AsyncIterator
from typing import cast
from urllib.parse import urlsplit

import httptools

_IDLE_S = 60.0
"""A pooled connection idle for longer is closed rather than reused (servers drop idle ones)."""
_CONNECT_TIMEOUT_S = 10.0
_HIGH_WATER = 1 << 20
"""Bytes buffered from a response the reader has not taken yet before the socket is paused."""


class ConnectionFailed(OSError):
    """The provider could not be reached, or dropped the connection before the answer ended."""


class _Connection(asyncio.Protocol):
    """One TCP (or TLS) connection carrying one request at a time."""

    def __init__(self, pool: _Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.response: Response | None = None
        self.closed = False
        self.idle_since = 0.0
        self.used = False
        self._header_name = b""

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass asyncio's

    def data_received(self, data: bytes) -> None:
        response = self.response
        if response is None:
            self.close()  # bytes nobody asked for: the connection is not in a known state
            return
        response.received_any = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            response.fail(ConnectionFailed(f"malformed HTTP response from the provider: {exc}"))
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        response = self.response
        if response is None or response.complete:
            return
        delimited = "content-length" in response.headers or "chunked" in response.headers.get("transfer-encoding", "")
        if response.status and exc is None and not delimited:
            response.finish()  # a body that runs until the server closes the connection
            return
        response.fail(ConnectionFailed(str(exc) if exc else "the provider closed the connection"))

    def pause_writing(self) -> None:  # request bodies are small; nothing to pause
        pass

    def resume_writing(self) -> None:
        pass

    # httptools callbacks
    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.response is not None
        if name:
            self._header_name = name.lower()
            self.response.headers[self._header_name.decode("latin-1")] = value.decode("latin-1")
        else:  # a header value split across reads
            key = self._header_name.decode("latin-1")
            self.response.headers[key] += value.decode("latin-1")

    def on_headers_complete(self) -> None:
        response = self.response
        assert response is not None
        response.status = self.parser.get_status_code()
        response.keep_alive = self.parser.should_keep_alive()
        encoding = response.headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "deflate"):
            response.decoder = zlib.decompressobj(wbits=47)  # gzip or zlib, by its header
        response.headers_arrived()

    def on_body(self, body: bytes) -> None:
        assert self.response is not None
        self.response.feed(body)

    def on_message_complete(self) -> None:
        response = self.response
        assert response is not None
        response.finish()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Response:
    """A provider's answer: status and headers at once, the body read whole or by lines.
    `release()` hands a fully read connection back to its pool; `close()` drops it."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.headers: dict[str, str] = {}
        self.keep_alive = False
        self.complete = False
        self.received_any = False
        self.decoder: zlib._Decompress | None = None
        # A bare future rather than an asyncio.Event: one waiter, set once, less to do per request.
        self.headers_done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._chunks: deque[bytes] = deque()
        self._buffered = 0
        self._waiter: asyncio.Future[None] | None = None
        self._error: ConnectionFailed | None = None
        self._paused = False
        self._done = False

    # fed by the connection
    def feed(self, data: bytes) -> None:
        if self.decoder is not None:
            data = self.decoder.decompress(data)
        if data:
            self._chunks.append(data)
            self._buffered += len(data)
            if self._buffered > _HIGH_WATER and not self._paused and self._connection.transport is not None:
                self._paused = True
                self._connection.transport.pause_reading()
        self._wake()

    def finish(self) -> None:
        if self.decoder is not None and (tail := self.decoder.flush()):
            self._chunks.append(tail)
        self.complete = True
        self._wake()

    def headers_arrived(self) -> None:
        if not self.headers_done.done():
            self.headers_done.set_result(None)

    def fail(self, error: ConnectionFailed) -> None:
        self._error = error
        self.headers_arrived()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # read by the caller
    async def chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives; raises ConnectionFailed if it ends early."""
        while True:
            if self._chunks:
                # Everything that has arrived, in one piece: the reader handles it in one go.
                data = self._chunks.popleft() if len(self._chunks) == 1 else b"".join(self._chunks)
                self._chunks.clear()
                self._buffered = 0
                if self._paused:
                    self._paused = False
                    if self._connection.transport is not None:
                        self._connection.transport.resume_reading()
                yield data
                continue
            if self.complete:
                return
            if self._error is not None:
                raise self._error
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def read(self, limit: int | None = None) -> bytes:
        """The body, whole (or its first `limit` bytes, after which the connection is dropped)."""
        if self.complete and limit is None and not self._paused:  # all here already: no reader needed
            data = b"".join(self._chunks)
            self._chunks.clear()
            self._buffered = 0
            return data
        parts: list[bytes] = []
        size = 0
        async for chunk in self.chunks():
            parts.append(chunk)
            size += len(chunk)
            if limit is not None and size >= limit:
                self.close()
                return b"".join(parts)[:limit]
        return b"".join(parts)

    async def lines(self) -> AsyncIterator[bytes]:
        """The body line by line, each with its line ending (the last may have none)."""
        async for batch in self.line_batches():
            for line in batch:
                yield line

    async def line_batches(self) -> AsyncIterator[list[bytes]]:
        """The body's lines as they arrive, each batch the complete lines of one read."""
        pending = b""
        async for chunk in self.chunks():
            data = pending + chunk if pending else chunk
            batch: list[bytes] = []
            start = 0
            while (end := data.find(b"\n", start)) >= 0:
                batch.append(data[start : end + 1])
                start = end + 1
            pending = data[start:]
            if batch:
                yield batch
        if pending:
            yield [pending]

    def release(self) -> None:
        """Done with the response: a completely read one frees its connection for the next request."""
        if self._done:
            return
        self._done = True
        connection = self._connection
        connection.response = None
        if self.complete and self.keep_alive and not connection.closed:
            connection.pool.put(connection)
        else:
            connection.close()

    def close(self) -> None:
        """Drop the connection (an answer not read to its end cannot share it)."""
        if not self._done:
            self._done = True
            self._connection.response = None
            self._connection.close()


class _Pool:
    def __init__(self, host: str, port: int, tls: ssl.SSLContext | None) -> None:
        self.host, self.port, self.tls = host, port, tls
        self.idle: list[_Connection] = []
        self.host_header = host if port in (80, 443) else f"{host}:{port}"

    def take(self) -> _Connection | None:
        now = time.monotonic()
        while self.idle:
            connection = self.idle.pop()  # the most recently used: the least likely to be dropped
            if not connection.closed and now - connection.idle_since < _IDLE_S:
                return connection
            connection.close()
        return None

    def put(self, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        connection.used = True
        self.idle.append(connection)

    async def connect(self) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(_CONNECT_TIMEOUT_S):
                transport, protocol = await loop.create_connection(
                    lambda: _Connection(self),
                    self.host,
                    self.port,
                    ssl=self.tls,
                    server_hostname=self.host if self.tls else None,
                )
        except TimeoutError:
            raise ConnectionFailed(
                f"could not connect to {self.host_header} within {_CONNECT_TIMEOUT_S:.0f} s"
            ) from None
        except OSError as exc:
            raise ConnectionFailed(f"could not connect to {self.host_header}: {exc.strerror or exc}") from None
        # uvloop may call connection_made only after create_connection has returned.
        protocol.transport = transport
        return protocol

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


class HttpClient:
    """Keep-alive pools by scheme, host and port; `post` is all the direct forwards need."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: the context for https:// origins (a private CA); default: the system's CAs."""
        self._pools: dict[str, tuple[_Pool, str]] = {}
        self._tls: ssl.SSLContext | None = tls

    def _pool(self, url: str) -> tuple[_Pool, str]:
        # Keyed by everything before the path, so the URL is split once per origin.
        origin_end = url.find("/", url.find("//") + 2)
        origin = url if origin_end < 0 else url[:origin_end]
        found = self._pools.get(origin)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConnectionFailed(f"not an http(s) URL: {origin}")
            tls = None
            if parts.scheme == "https":
                tls = self._tls = self._tls or ssl.create_default_context()
            port = parts.port or (443 if tls else 80)
            found = self._pools[origin] = (_Pool(parts.hostname, port, tls), origin)
        return found

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send; return once the status and headers are in. Raises ConnectionFailed."""
        pool, origin = self._pool(url)
        path = url[len(origin) :] or "/"
        head = [f"POST {path} HTTP/1.1\r\nHost: {pool.host_header}\r\nContent-Length: {len(body)}\r\n"]
        head += [f"{name}: {value}\r\n" for name, value in headers.items()]
        head.append("\r\n")
        message = "".join(head).encode("latin-1") + body
        while True:
            connection = pool.take()
            reused = connection is not None
            if connection is None:
                connection = await pool.connect()
            response = Response(connection)
            connection.response = response
            assert connection.transport is not None
            connection.transport.write(message)
            try:
                await response.headers_done
            except BaseException:
                response.close()  # cancelled (the router's timeout): the connection's state is unknown
                raise
            if response.status:
                return response
            response.close()
            error = response._error or ConnectionFailed("the provider closed the connection")
            # A kept-alive connection the server closed just as we sent: nothing reached it; once more.
            if not (reused and not response.received_any):
                raise error

    def close(self) -> None:
        for pool, _ in self._pools.values():
            pool.close()
        self._pools.clear()
