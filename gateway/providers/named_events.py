"""Server-sent event streams with named events (the Responses API's and Anthropic's): frames
passed through as received, and tallies that read only the events the ledger needs."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Callable
from typing import Any

from gateway.json_codec import dumps, loads
from gateway.providers.results import StreamTally
from gateway.token_usage import from_anthropic_usage, from_responses_usage

RESPONSES_FINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


async def frames(lines: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """Group SSE lines into frames, each ending with a blank line."""
    buffer: list[bytes] = []
    async for raw in lines:
        line = raw.rstrip(b"\r\n")
        if line:
            buffer.append(line)
        elif buffer:
            yield b"\n".join(buffer) + b"\n\n"
            buffer = []
    if buffer:
        yield b"\n".join(buffer) + b"\n\n"


def named_frame(payload: dict[str, Any]) -> bytes:
    data = dumps(payload)
    return b"event: " + str(payload.get("type", "")).encode() + b"\ndata: " + data + b"\n\n"


def event_name(frame: bytes) -> str | None:
    if frame.startswith(b"event:"):
        return frame[6 : frame.index(b"\n") if b"\n" in frame else None].strip().decode()
    return None


def frame_data(frame: bytes) -> dict[str, Any] | None:
    for line in frame.split(b"\n"):
        if line.startswith(b"data:"):
            try:
                data = loads(line[5:])
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def litellm_estimate(block: dict[str, Any]) -> bool:
    """A usage block LiteLLM made up: when a provider's Responses stream ends without usage,
    LiteLLM's stream fills in its own token count, with only the three totals. A provider's block
    carries `input_tokens_details` and `output_tokens_details` (OpenAI's schema requires both)."""
    return "input_tokens_details" not in block and "output_tokens_details" not in block


class ResponsesTally:
    """Reads usage and id from `response.completed` (or incomplete/failed), text from deltas.

    `not_reported` tells a usage block that does not come from the provider; the gateway then
    counts, as it does when the block is missing."""

    def __init__(self, not_reported: Callable[[dict[str, Any]], bool] | None = None) -> None:
        self.tally = StreamTally()
        self._deltas: list[bytes] = []
        self._not_reported = not_reported

    def absorb(self, frame: bytes) -> None:
        name = event_name(frame)
        if name == "response.output_text.delta":
            self._deltas.append(frame)  # parsed only if the provider reports no usage
        elif name in RESPONSES_FINAL or name == "response.created":
            response = (frame_data(frame) or {}).get("response") or {}
            self.tally.response_id = self.tally.response_id or response.get("id")
            if name in RESPONSES_FINAL:
                block = response.get("usage")
                if self._not_reported is not None and isinstance(block, dict) and self._not_reported(block):
                    block = None
                self.tally.usage = from_responses_usage(block)
                if status := response.get("status"):
                    self.tally.finish_reasons.append(str(status))
                self.settle()  # the route meters at this event, before the stream's end

    def settle(self) -> None:
        """At the last event or the stream's end: the reply texts, when the gateway must count
        the tokens itself."""
        if self.tally.usage is None:
            self.tally.texts = [str((frame_data(f) or {}).get("delta") or "") for f in self._deltas]


class AnthropicTally:
    """Usage from `message_start` (input and cache) and `message_delta` (output, cumulative)."""

    def __init__(self) -> None:
        self.tally = StreamTally()
        self._usage: dict[str, Any] = {}
        self._deltas: list[bytes] = []

    def absorb(self, frame: bytes) -> None:
        name = event_name(frame)
        if name == "content_block_delta":
            self._deltas.append(frame)
            return
        if name == "message_stop":
            self.settle()  # the route meters at this event, before the stream's end
            return
        if name not in ("message_start", "message_delta"):
            return
        data = frame_data(frame) or {}
        if name == "message_start":
            message = data.get("message") or {}
            self.tally.response_id = message.get("id")
            block = message.get("usage")
        else:
            block = data.get("usage")
            if reason := (data.get("delta") or {}).get("stop_reason"):
                self.tally.finish_reasons.append(str(reason))
        if isinstance(block, dict):
            # message_delta's counts are cumulative and win; a zero never overwrites a count.
            self._usage |= {k: v for k, v in block.items() if v or k not in self._usage}
            self.tally.usage = from_anthropic_usage(self._usage)

    def settle(self) -> None:
        """At the last event or the stream's end: the reply texts, when the gateway must count
        the tokens itself."""
        if self.tally.usage is None:
            deltas = [(frame_data(f) or {}).get("delta") or {} for f in self._deltas]
            self.tally.texts = [str(d.get("text") or d.get("partial_json") or "") for d in deltas]
