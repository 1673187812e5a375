"""One POST to a provider, with failures classified: the direct forwards' shared step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.json_codec import dumps, loads
from gateway.providers.h1 import ConnectionFailed, HttpClient, Response
from gateway.routing.deployments import Deployment
from gateway.routing.failures import UpstreamFailure
from gateway.scrubbing import held_secrets, scrub_json, scrub_text

_MAX_ERROR_BODY = 64 * 1024


def _retry_after(headers: Any) -> float | None:
    if ms := headers.get("retry-after-ms"):
        try:
            return float(ms) / 1000.0
        except ValueError:
            return None
    if value := headers.get("retry-after"):
        try:
            return float(value)
        except ValueError:
            return None  # an HTTP date; treated as no hint
    return None


def scrub(text: str, deployment: Deployment) -> str:
    """Never let a provider echo a provider key (any version the gateway holds) or anything
    shaped like a credential back to an agent, a log or the ledger (see gateway/scrubbing.py)."""
    return scrub_text(text, held_secrets(deployment.api_key))


def _error_fields(data: Any, fallback: str) -> tuple[str, str | None]:
    """The message and code of an error body (OpenAI's `{"error": {...}}`, Anthropic's
    `{"type": "error", "error": {...}}`, or `{"error": "text"}`); a message that is not a
    string is kept as its JSON text."""
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, str):
        return error or fallback, None
    if not isinstance(error, dict):
        return fallback, None
    message = error.get("message")
    if not isinstance(message, str):
        message = dumps(message).decode() if message else fallback
    code = error.get("code")
    return message or fallback, code if isinstance(code, str) else None


def failure_from_response(status: int, body: bytes, headers: Any, deployment: Deployment) -> UpstreamFailure:
    try:
        data = loads(body)
    except ValueError:
        data = None
    message, code = _error_fields(data, f"HTTP {status}")
    held = held_secrets(deployment.api_key)
    code = scrub_text(code, held) if code is not None else None
    return UpstreamFailure(
        scrub_text(message, held)[:1000],
        status=status,
        retry_after=_retry_after(headers),
        code=code,
        context_window=code == "context_length_exceeded",
    )


def stream_error(payload: bytes, deployment: Deployment) -> UpstreamFailure | None:
    """An OpenAI-protocol stream chunk that is the provider's error (`{"error": {...}}`, sent
    mid-stream), as the failure the route turns into its own (scrubbed) error event; None for
    any other chunk. The status is 500, the one LiteLLM's path gives the same event."""
    try:
        data = loads(payload)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("error"), (dict, str)) or data.get("choices"):
        return None
    message, code = _error_fields(data, "the provider's stream failed")
    held = held_secrets(deployment.api_key)
    return UpstreamFailure(
        scrub_text(message, held)[:1000], status=500, code=scrub_text(code, held) if code is not None else None
    )


def responses_stream_error(data: dict[str, Any] | None, deployment: Deployment) -> UpstreamFailure:
    """A Responses API `error` event mid-stream (`{"type": "error", "code", "message", "param"}`),
    as the failure the route sends its own error event for: status 500, as on LiteLLM's path."""
    message = (data or {}).get("message")
    code = (data or {}).get("code")
    held = held_secrets(deployment.api_key)
    return UpstreamFailure(
        scrub_text(message if isinstance(message, str) and message else "the provider's stream failed", held)[:1000],
        status=500,
        code=scrub_text(code, held) if isinstance(code, str) else None,
    )


# Anthropic's error type -> the status LiteLLM's stream adapter derived it from.
_STATUS_BY_ANTHROPIC_TYPE = {"rate_limit_error": 429, "overloaded_error": 529, "timeout_error": 504}


def anthropic_stream_error(data: dict[str, Any] | None, deployment: Deployment) -> UpstreamFailure:
    """An Anthropic `error` event mid-stream (the provider's, or LiteLLM's adapter's, which turns a
    lost connection into a 500 `api_error`), as the failure the route sends its own error event for."""
    error = (data or {}).get("error") or {}
    message, _ = _error_fields(data, "the provider's stream failed")
    message = scrub(message, deployment)
    status = _STATUS_BY_ANTHROPIC_TYPE.get(str(error.get("type")) if isinstance(error, dict) else "")
    if status is None:
        return UpstreamFailure(message[:1000], status=None, kind="connection")
    return UpstreamFailure(message[:1000], status=status)


SCRUBBED_EVENTS = frozenset({"error", "response.failed"})
"""Named events relayed as the provider sent them that may quote what the provider was sent."""


def scrubbed_frame(frame: bytes, deployment: Deployment) -> bytes:
    """A named event relayed to the client (a Responses `error` or `response.failed`) with every
    string of its data scrubbed."""
    name, data = b"", None
    for line in frame.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            try:
                data = loads(line[5:])
            except ValueError:
                data = None
    if data is None:
        return scrub(frame.decode("utf-8", "replace"), deployment).encode()
    clean = dumps(scrub_json(data, held_secrets(deployment.api_key)))
    return (b"event: " + name + b"\n" if name else b"") + b"data: " + clean + b"\n\n"


def connection_failure(exc: ConnectionFailed, deployment: Deployment) -> UpstreamFailure:
    return UpstreamFailure(scrub(str(exc), deployment) or type(exc).__name__, status=None, kind="connection")


async def post(
    client: HttpClient, url: str, body: dict[str, Any], headers: dict[str, str], deployment: Deployment
) -> Response:
    """The provider's 200 response, unread; anything else raises UpstreamFailure."""
    data = dumps(body)
    return await post_bytes(client, url, data, {"Content-Type": "application/json", **headers}, deployment)


async def post_bytes(
    client: HttpClient, url: str, data: bytes, headers: dict[str, str], deployment: Deployment
) -> Response:
    try:
        response = await client.post(url, data, headers)
    except ConnectionFailed as exc:
        raise connection_failure(exc, deployment) from None
    if response.status != 200:
        try:
            error = await response.read(_MAX_ERROR_BODY)
        except ConnectionFailed:
            error = b""
        finally:
            response.release()
        raise failure_from_response(response.status, error, response.headers, deployment)
    return response


async def read_json(response: Response, deployment: Deployment) -> tuple[bytes, dict[str, Any]]:
    """The whole body, and its JSON object."""
    try:
        body = await response.read()
    except ConnectionFailed as exc:
        raise connection_failure(exc, deployment) from None
    finally:
        response.release()
    try:
        data = loads(body)
    except ValueError:
        raise UpstreamFailure("the provider answered with a body that is not JSON", status=502) from None
    return body, data if isinstance(data, dict) else {}


async def body_lines(response: Response, deployment: Deployment) -> AsyncIterator[bytes]:
    """A streamed body's lines as they arrive; a connection lost mid-body (the provider dropped
    it, a truncated chunked body) raises UpstreamFailure, which the route sends as an error event."""
    try:
        async for line in response.lines():
            yield line
    except ConnectionFailed as exc:
        raise connection_failure(exc, deployment) from None


async def body_line_batches(response: Response, deployment: Deployment) -> AsyncIterator[list[bytes]]:
    """`body_lines`, grouped: the complete lines of each network read together."""
    try:
        async for lines in response.line_batches():
            yield lines
    except ConnectionFailed as exc:
        raise connection_failure(exc, deployment) from None
