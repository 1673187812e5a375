"""The direct forwards' HTTP/1.1 client against real sockets: a scripted asyncio server answers
each request with exact bytes, so keep-alive, framing, drops and cancellation are all observable."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest
import uvloop

from gateway.providers.h1 import ConnectionFailed, HttpClient

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n" % (len(body), extra) + body


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    return head + await reader.readexactly(length)


class Server:
    """Counts connections; `script(reader, writer, connection_number)` serves each one."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.requests: list[bytes] = []
        self.url = ""
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self.connections += 1
            try:
                await self.script(reader, writer, self.connections)
            except (asyncio.IncompleteReadError, ConnectionError):
                pass
            finally:
                writer.close()

        self._server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


def serve_forever(answer: bytes, requests: list[bytes]) -> Script:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        while True:
            requests.append(await read_request(reader))
            writer.write(answer)
            await writer.drain()

    return script


Run = Callable[[Callable[[], Awaitable[None]]], None]


@pytest.fixture(params=["asyncio", "uvloop"])
def run(request: pytest.FixtureRequest) -> Run:
    """Each test on both event loops: the gateway serves on uvloop, the test servers on asyncio's."""

    def runner(test: Callable[[], Awaitable[None]]) -> None:
        if request.param == "uvloop":
            uvloop.run(asyncio.wait_for(test(), 10))
        else:
            asyncio.run(asyncio.wait_for(test(), 10))

    return runner


def test_requests_share_one_kept_alive_connection_and_are_written_as_sent(run: Run) -> None:
    async def test() -> None:
        requests: list[bytes] = []
        async with Server(serve_forever(ok(b'{"id":"a"}'), requests)) as server:
            client = HttpClient()
            for _ in range(3):
                response = await client.post(server.url, b'{"x":1}', {"Authorization": "Bearer k"})
                assert (response.status, await response.read()) == (200, b'{"id":"a"}')
                response.release()
            client.close()
            assert server.connections == 1
            assert requests[0] == (
                b"POST /v1/chat/completions HTTP/1.1\r\nHost: " + server.url.split("/")[2].encode() + b"\r\n"
                b"Content-Length: 7\r\nAuthorization: Bearer k\r\n\r\n" + b'{"x":1}'
            )
            assert len(requests) == 3

    run(test)


def test_chunked_stream_is_read_line_by_line_across_chunk_boundaries(run: Run) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: text/event-stream\r\n\r\n")
        for piece in (b"data: one\n", b"\ndata: t", b"wo\n\n", b"data: [DONE]\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async def test() -> None:
        async with Server(script) as server:
            client = HttpClient()
            response = await client.post(server.url, b"{}", {})
            assert response.headers["content-type"] == "text/event-stream"
            lines = [line async for line in response.lines()]
            assert lines == [b"data: one\n", b"\n", b"data: two\n", b"\n", b"data: [DONE]\n", b"\n"]
            response.release()
            client.close()

    run(test)


def test_a_connection_the_server_closed_while_idle_is_replaced(run: Run) -> None:
    requests: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        requests.append(await read_request(reader))
        writer.write(ok(b"%d" % number))
        await writer.drain()
        # The first connection is closed by the server after one answer, as an idle timeout would.
        if number > 1:
            await serve_forever(ok(b"%d" % number), requests)(reader, writer, number)

    async def test() -> None:
        async with Server(script) as server:
            client = HttpClient()
            first = await client.post(server.url, b"{}", {})
            assert await first.read() == b"1"
            first.release()
            await asyncio.sleep(0.05)  # the server's close arrives while the connection idles
            second = await client.post(server.url, b"{}", {})
            assert await second.read() == b"2"
            second.release()
            client.close()
            assert (server.connections, len(requests)) == (2, 2)

    run(test)


def test_a_body_cut_short_raises_and_the_connection_is_not_reused(run: Run) -> None:
    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: int) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
        await writer.drain()

    async def test() -> None:
        async with Server(script) as server:
            client = HttpClient()
            response = await client.post(server.url, b"{}", {})
            with pytest.raises(ConnectionFailed):
                await response.read()
            response.release()
            assert server.connections == 1
            with pytest.raises(ConnectionFailed):
                await (await client.post(server.url, b"{}", {})).read()
            assert server.connections == 2
            client.close()

    run(test)


def test_a_body_delimited_by_close_and_a_gzip_body_are_read_whole(run: Run) -> None:
    packed = gzip.compress(b'{"usage":{"prompt_tokens":3}}')

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        await read_request(reader)
        if number == 1:
            writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")
        else:
            writer.write(ok(packed, b"Content-Encoding: gzip\r\n"))
        await writer.drain()

    async def test() -> None:
        async with Server(script) as server:
            client = HttpClient()
            response = await client.post(server.url, b"{}", {})
            assert await response.read() == b"until the end"
            response.release()
            response = await client.post(server.url, b"{}", {})
            assert await response.read() == b'{"usage":{"prompt_tokens":3}}'
            response.release()
            client.close()

    run(test)


def test_a_request_cancelled_before_the_answer_drops_its_connection(run: Run) -> None:
    requests: list[bytes] = []

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, number: int) -> None:
        if number == 1:
            await read_request(reader)
            await asyncio.sleep(0.5)  # slower than the caller's timeout
            writer.write(ok(b"late"))
            await writer.drain()
            await reader.read()
        else:
            await serve_forever(ok(b"fresh"), requests)(reader, writer, number)

    async def test() -> None:
        async with Server(script) as server:
            client = HttpClient()
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await client.post(server.url, b"{}", {})
            response = await client.post(server.url, b"{}", {})
            assert await response.read() == b"fresh"  # never the late answer to the cancelled request
            response.release()
            client.close()
            assert server.connections == 2

    run(test)


def test_an_unreachable_provider_is_a_connection_failure(run: Run) -> None:
    async def test() -> None:
        async with Server(serve_forever(ok(b""), [])) as server:
            url = server.url
        client = HttpClient()
        with pytest.raises(ConnectionFailed, match="could not connect"):
            await client.post(url, b"{}", {})
        with pytest.raises(ConnectionFailed, match="not an http"):
            await client.post("ftp://example.invalid/x", b"{}", {})

    run(test)


def test_lines_that_arrive_together_come_as_one_batch(run: Run) -> None:
    events = b"data: one\n\ndata: two\n\ndata: [DONE]\n\n"

    async def test() -> None:
        async with Server(serve_forever(ok(events), [])) as server:
            client = HttpClient()
            response = await client.post(server.url, b"{}", {})
            batches = [batch async for batch in response.line_batches()]
            assert batches == [[b"data: one\n", b"\n", b"data: two\n", b"\n", b"data: [DONE]\n", b"\n"]]
            response.release()
            client.close()

    run(test)
