"""One POST to a provider, with failures classified: the direct forwards' shared step."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from gateway.json_codec import dumps, loads
from gateway.providers.h1 import ConnectionFailed, HttpClient, Response
from gateway.routing.deployments import Deployment
from gateway.routing.failures import UpstreamFailure

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
    """Never let a provider echo our provider key back to an agent or a log."""
    if deployment.api_key is not None:
        text = text.replace(deployment.api_key.reveal(), "***")
    return text


def failure_from_response(status: int, body: bytes, headers: Any, deployment: Deployment) -> UpstreamFailure:
    message, code = f"HTTP {status}", None
    try:
        error = loads(body).get("error") or {}
        if isinstance(error, dict):
            message = str(error.get("message") or message)
            code = error.get("code") if isinstance(error.get("code"), str) else None
        elif isinstance(error, str):
            message = error
    except (ValueError, AttributeError):
        pass
    return UpstreamFailure(
        scrub(message, deployment)[:1000],
        status=status,
        retry_after=_retry_after(headers),
        code=code,
        context_window=code == "context_length_exceeded",
    )


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
