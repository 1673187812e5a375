"""HTTP pieces both mocks share: JSON bodies, server-sent events that notice a client leaving, a CLI."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.testing.behaviour import MockBehaviour, RecordedRequest

_PIECE = re.compile(r"\s*\S+")


def dumps(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def pieces(text: str) -> list[str]:
    """A text cut into stream deltas, one per word; joined they give the text back."""
    return _PIECE.findall(text) or [text]


def json_response(body: bytes, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status_code=status, media_type="application/json", headers=headers)


async def received(request: Request, behaviour: MockBehaviour) -> tuple[bytes, Any]:
    """Reads, parses and records the request, then waits out the scripted latency."""
    raw = await request.body()
    body: Any = None
    if behaviour.record or not behaviour.fast:
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        behaviour.received(RecordedRequest(request.method, request.url.path, dict(request.headers), body))
    if behaviour.latency_s > 0:
        await anyio.sleep(behaviour.latency_s)
    return raw, body


class EventStream(Response):
    """A `text/event-stream` body of pre-encoded events.

    Counts the stream in the behaviour (in flight, then completed, cancelled when the client
    disconnects first, or aborted when `abort_stream_after` drops the connection on purpose).
    Without delays or an abort the events go out in one write, so the mock stays cheap.
    """

    media_type = "text/event-stream"

    def __init__(self, events: Sequence[bytes], behaviour: MockBehaviour, headers: dict[str, str] | None = None):
        # Like StreamingResponse: no `body` attribute, so no content-length header.
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **(headers or {})})
        self.events = events
        self.behaviour = behaviour

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        behaviour = self.behaviour
        behaviour.stream_started()
        outcome = "cancelled"
        try:
            async with anyio.create_task_group() as group:

                async def watch_disconnect() -> None:
                    message: Message = await receive()
                    while message["type"] != "http.disconnect":
                        message = await receive()
                    group.cancel_scope.cancel()

                group.start_soon(watch_disconnect)
                outcome = await self._send_events(send)
                group.cancel_scope.cancel()
        finally:
            behaviour.stream_ended(outcome)

    async def _send_events(self, send: Send) -> str:
        behaviour = self.behaviour
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        abort_after, delay = behaviour.abort_stream_after, behaviour.stream_delay_s
        events = self.events
        if behaviour.stream_error is not None:
            after, error = behaviour.stream_error
            events = [*events[:after], error]
        try:
            if abort_after is None and delay <= 0:
                await send({"type": "http.response.body", "body": b"".join(events), "more_body": False})
                return "completed"
            for sent, event in enumerate(events):
                if abort_after is not None and sent >= abort_after:
                    # Returning with the body unfinished makes the server drop the connection.
                    return "aborted"
                if sent and delay > 0:
                    await anyio.sleep(delay)
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:  # the server reports a client that went away while we wrote
            return "cancelled"
        return "completed"


def run_cli(
    description: str, create_app: Callable[[MockBehaviour], Starlette], default_key: str, argv: list[str] | None
) -> None:
    """`python -m gateway.testing.mock_<provider> --port P [--key K] [--fast] ...` under uvicorn."""
    import uvicorn

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--key", action="append", help=f"accepted API key (repeatable; default {default_key})")
    parser.add_argument("--reply", help="the reply text")
    parser.add_argument("--fast", action="store_true", help="precomputed responses, no request recording")
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--stream-delay-ms", type=float, default=0.0)
    args = parser.parse_args(argv)
    behaviour = MockBehaviour(
        accepted_keys=set(args.key or [default_key]),
        latency_s=args.latency_ms / 1000.0,
        stream_delay_s=args.stream_delay_ms / 1000.0,
        fast=args.fast,
        record=False,  # a long-running server would otherwise grow without bound
    )
    if args.reply is not None:
        behaviour.reply = args.reply
    uvicorn.run(create_app(behaviour), host=args.host, port=args.port, log_level="warning", access_log=False)
