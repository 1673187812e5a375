"""Shared handling of OpenAI chat-completion chunks in a stream, for both upstream paths."""

from __future__ import annotations

from typing import Any

from gateway.json_codec import dumps
from gateway.providers.results import StreamTally
from gateway.token_usage import from_usage_block

DONE = b"data: [DONE]\n\n"


def sse(data: dict[str, Any]) -> bytes:
    return b"data: " + dumps(data) + b"\n\n"


def absorb_chunk(data: dict[str, Any], tally: StreamTally, client_wants_usage: bool) -> dict[str, Any] | None:
    """Update the tally from one parsed chunk; return the chunk to send, or None to drop it.

    The gateway always asks the provider for usage; the usage-only chunk is dropped (and usage
    removed from content chunks) when the client did not ask for it."""
    tally.response_id = tally.response_id or data.get("id")
    choices = data.get("choices") or []
    for choice in choices:
        delta = choice.get("delta") or {}
        if isinstance(content := delta.get("content"), str):
            tally.texts.append(content)
        if reason := choice.get("finish_reason"):
            tally.finish_reasons.append(str(reason))
    block = data.get("usage")
    if block is not None:
        tally.usage = from_usage_block(block) or tally.usage
        if isinstance(block, dict):
            block.pop("cost", None)  # LiteLLM's annotation, not OpenAI's schema
        if not client_wants_usage:
            if not choices:
                return None
            del data["usage"]
    return data
