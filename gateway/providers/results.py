"""What an upstream attempt hands back to the route, whichever path served it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from gateway.token_usage import TokenUsage


@dataclass
class ChatResponse:
    body: bytes
    """The response body exactly as the client receives it."""
    usage: TokenUsage | None
    response_id: str | None = None
    finish_reasons: tuple[str, ...] = ()
    texts: list[str] = field(default_factory=list)
    """Reply texts, read only when the provider reported no usage and the gateway must count."""


@dataclass
class StreamTally:
    """What the route learns from a stream as it passes through."""

    usage: TokenUsage | None = None
    response_id: str | None = None
    finish_reasons: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)


@dataclass
class ChatStream:
    """Client-ready SSE bytes (`data: ...\\n\\n`, ending with `data: [DONE]`) plus a tally.

    `events` must be consumed or closed; closing it cancels the upstream request."""

    events: AsyncIterator[bytes]
    tally: StreamTally
    close: Callable[[], Awaitable[None]]
