"""What a mock provider does next: the one mutable object a test holds and changes.

The mocks run on their own event loop (usually a uvicorn server in a thread, see
`tests/servers.py`), so everything here is plain data plus a `threading.Condition`: a test
changes a field and the next request sees it, and `wait_until` blocks the test's thread until
the mock has reached a state (a stream cancelled, N requests received) instead of sleeping.

Token counting rule, shared by both mocks so a test can compute the expected usage by hand:

- a text's tokens are its whitespace-separated words (`len(text.split())`);
- a prompt is 3 tokens per message plus the words of every text part of its content (plus the
  words of the system prompt / instructions, counted as one more message);
- a completion is the words of the text the mock produced (the reply, the JSON reply, or a tool
  call's arguments) per choice, plus `reasoning_tokens` once per choice.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

TOKENS_PER_MESSAGE = 3


def words(text: str) -> int:
    """The mocks' token count of one text: whitespace-separated words."""
    return len(text.split())


def content_text(content: Any) -> str:
    """The text of a message content: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_tokens(messages: Iterable[Any], system: Any = None) -> int:
    """3 per message plus the words of its text; a system prompt counts as one more message."""
    total = 0
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else message
        total += TOKENS_PER_MESSAGE + words(content_text(content))
    if system:
        total += TOKENS_PER_MESSAGE + words(content_text(system))
    return total


@dataclass(frozen=True, slots=True)
class ScriptedFailure:
    """One failure the mock answers with instead of a success.

    `body` None renders the provider's own error body for `status` (OpenAI's `{"error": {...}}`
    or Anthropic's `{"type": "error", "error": {...}}`); `message` overrides its text.
    """

    status: int
    retry_after: str | None = None
    body: dict[str, Any] | None = None
    message: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """A request as the mock received it; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class MockBehaviour:
    """The mutable script of a mock provider; see the module docstring for the token rule."""

    accepted_keys: set[str] = field(default_factory=lambda: {"sk-mock"})
    reply: str = "Hello from the mock provider."
    # Structured output (response_format json_schema / json_object) answers with this JSON text.
    json_reply: str = '{"answer": "mock"}'
    # A tool call's arguments, as the JSON string the provider sends.
    tool_arguments: str = '{"query": "mock"}'
    cached_tokens: int = 0  # OpenAI prompt_tokens_details.cached_tokens; Anthropic cache_read_input_tokens
    cache_creation_tokens: int = 0  # Anthropic cache_creation_input_tokens
    reasoning_tokens: int = 0  # OpenAI completion_tokens_details.reasoning_tokens, per choice
    embedding_dimensions: int = 8
    models: list[str] = field(default_factory=lambda: ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"])
    failures: deque[ScriptedFailure] = field(default_factory=deque)
    latency_s: float = 0.0  # before the response (or a stream's first byte)
    stream_delay_s: float = 0.0  # between stream events
    omit_usage: bool = False  # no usage block anywhere, for tokenizer-estimation tests
    abort_stream_after: int | None = None  # drop the connection after this many SSE events
    # (n, event): after n SSE events send this raw event (the provider's mid-stream error) and end the body
    stream_error: tuple[int, bytes] | None = None
    record: bool = True  # keep every request in `requests`; benchmarks turn it off
    fast: bool = False  # serve precomputed bytes for plain requests (benchmarks)

    requests: list[RecordedRequest] = field(default_factory=list)
    streams_in_flight: int = 0
    streams_completed: int = 0
    streams_cancelled: int = 0  # the client went away before the stream ended
    streams_aborted: int = 0  # `abort_stream_after` dropped the connection
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False, compare=False)

    def fail_next(self, *failures: ScriptedFailure) -> None:
        """Queue failures; each request that passes auth takes the next one until none are left."""
        self.failures.extend(failures)

    def take_failure(self) -> ScriptedFailure | None:
        try:
            return self.failures.popleft()
        except IndexError:
            return None

    def received(self, request: RecordedRequest) -> None:
        if self.record:
            with self._changed:
                self.requests.append(request)
                self._changed.notify_all()

    def stream_started(self) -> None:
        with self._changed:
            self.streams_in_flight += 1
            self._changed.notify_all()

    def stream_ended(self, outcome: str) -> None:
        """outcome: "completed", "cancelled" or "aborted"."""
        with self._changed:
            self.streams_in_flight -= 1
            name = f"streams_{outcome}"
            setattr(self, name, getattr(self, name) + 1)
            self._changed.notify_all()

    def wait_until(self, predicate: Callable[[MockBehaviour], bool], timeout_s: float = 10.0) -> None:
        """Block the calling thread until `predicate(self)` holds; TimeoutError after `timeout_s`.

        Call it from the test's thread, never from the mock's own event loop.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self), timeout=timeout_s):
                raise TimeoutError(f"mock state not reached within {timeout_s} s: {self.summary()}")

    def summary(self) -> str:
        return (
            f"{len(self.requests)} requests, {len(self.failures)} failures queued, streams: "
            f"{self.streams_in_flight} in flight, {self.streams_completed} completed, "
            f"{self.streams_cancelled} cancelled, {self.streams_aborted} aborted"
        )
