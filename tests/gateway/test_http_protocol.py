"""gateway/http_protocol.py: one write per event-loop turn, and uvicorn's HTTP/1.1 unchanged."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from gateway.http_protocol import CoalescingHttpToolsProtocol, CoalescingTransport


class FakeTransport:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))

    def writelines(self, data: list[bytes]) -> None:
        self.calls.append(("writelines", list(data)))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True
        self.calls.append(("close", None))

    def get_extra_info(self, name: str) -> str:
        return f"info:{name}"


def test_writes_of_one_turn_leave_together_at_its_end() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        fake = FakeTransport()
        transport = CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head")
        transport.write(b"body")
        assert fake.calls == []  # nothing before the turn ends
        await asyncio.sleep(0)
        transport.write(b"alone")
        await asyncio.sleep(0)
        assert transport.get_extra_info("peername") == "info:peername"
        return fake.calls

    assert asyncio.run(scenario()) == [("write", b"headbody"), ("write", b"alone")]


def test_a_large_turn_is_handed_over_as_its_pieces() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        fake = FakeTransport()
        transport = CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"head")
        transport.write(b"x" * 70_000)
        await asyncio.sleep(0)
        return fake.calls

    assert asyncio.run(scenario()) == [("writelines", [b"head", b"x" * 70_000])]


def test_close_sends_what_is_held_first_and_a_closing_transport_gets_nothing() -> None:
    async def scenario() -> list[tuple[str, Any]]:
        fake = FakeTransport()
        transport = CoalescingTransport(fake, asyncio.get_running_loop())  # type: ignore[arg-type]
        transport.write(b"last words")
        transport.close()
        transport.write(b"too late")
        await asyncio.sleep(0)
        return fake.calls

    assert asyncio.run(scenario()) == [("write", b"last words"), ("close", None)]


async def json_answer(request: Request) -> Response:
    return JSONResponse({"got": (await request.body()).decode()})


async def no_content(request: Request) -> Response:
    return Response(status_code=204)


async def events(request: Request) -> Response:
    async def chunks() -> AsyncIterator[bytes]:
        for index in range(3):
            yield f"data: {index}\n\n".encode()
            await asyncio.sleep(0.01)  # each event in a later turn than the one before

    return StreamingResponse(chunks(), media_type="text/event-stream")


APP = Starlette(
    routes=[
        Route("/json", json_answer, methods=["POST"]),
        Route("/empty", no_content, methods=["GET"]),
        Route("/events", events, methods=["GET"]),
    ]
)


@pytest.fixture(scope="module")
def base_url() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(APP, host="127.0.0.1", port=port, http=CoalescingHttpToolsProtocol, log_config=None)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_keep_alive_requests_of_every_shape_on_one_connection(base_url: str) -> None:
    with httpx.Client(base_url=base_url) as client:
        for index in range(3):
            answer = client.post("/json", content=f"body {index}".encode())
            assert (answer.status_code, answer.json()) == (200, {"got": f"body {index}"})
        empty = client.get("/empty")
        assert (empty.status_code, empty.content) == (204, b"")
        streamed = client.get("/events")
        assert streamed.text == "data: 0\n\ndata: 1\n\ndata: 2\n\n"
        chunked = client.post("/json", content=iter([b"in ", b"pieces"]))  # a chunked request body
        assert chunked.json() == {"got": "in pieces"}
        closing = client.post("/json", content=b"bye", headers={"Connection": "close"})
        assert (closing.json(), closing.headers["connection"]) == ({"got": "bye"}, "close")


def test_pipelined_requests_are_answered_in_order(base_url: str) -> None:
    port = int(base_url.rsplit(":", 1)[1])
    request = b"POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request % (5, b"first") + request % (6, b"second"))
        received = b""
        while received.count(b'{"got":') < 2:
            chunk = sock.recv(65536)
            assert chunk, "connection closed early"
            received += chunk
    assert received.index(b'{"got":"first"}') < received.index(b'{"got":"second"}')
    assert received.count(b"HTTP/1.1 200 OK") == 2
