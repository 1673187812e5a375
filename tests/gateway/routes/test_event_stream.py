"""EventStreamResponse: events sent as they come; a client that leaves cancels the relay, and the
response ends without an error for the server to log."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from starlette.types import Message

from gateway.routes.event_stream import EventStreamResponse


def test_events_are_sent_in_order_then_the_body_ends() -> None:
    async def events() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        yield b"data: [DONE]\n\n"

    async def run() -> list[Message]:
        sent: list[Message] = []
        never = asyncio.Event()

        async def receive() -> Message:
            await never.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await EventStreamResponse(events(), {"x-request-id": "req_1"})({"type": "http"}, receive, send)
        return sent

    sent = asyncio.run(run())

    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    assert (b"content-type", b"text/event-stream; charset=utf-8") in sent[0]["headers"]
    assert (b"x-request-id", b"req_1") in sent[0]["headers"]
    assert [(m["body"], m["more_body"]) for m in sent[1:]] == [
        (b"data: 1\n\n", True),
        (b"data: [DONE]\n\n", True),
        (b"", False),
    ]


def test_a_client_that_leaves_cancels_the_relay_and_the_response_returns() -> None:
    seen: list[str] = []

    async def events() -> AsyncIterator[bytes]:
        yield b"data: 1\n\n"
        try:
            await asyncio.sleep(30)  # a provider still generating
        except asyncio.CancelledError:
            seen.append("relay cancelled")
            raise
        yield b"data: never\n\n"

    async def run() -> list[Message]:
        sent: list[Message] = []

        async def receive() -> Message:
            await asyncio.sleep(0.01)
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            sent.append(message)

        await EventStreamResponse(events(), {})({"type": "http"}, receive, send)
        task = asyncio.current_task()
        assert task is not None and task.cancelling() == 0  # nothing left to cancel the caller later
        return sent

    sent = asyncio.run(asyncio.wait_for(run(), 5))

    assert seen == ["relay cancelled"]
    assert [m.get("body") for m in sent[1:]] == [b"data: 1\n\n"]
