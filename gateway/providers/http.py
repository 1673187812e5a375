"""One POST to a provider over aiohttp, with failures classified: the direct forwards' shared step."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

from gateway.providers.openai_direct import failure_from_response, scrub
from gateway.routing.deployments import Deployment
from gateway.routing.failures import UpstreamFailure

_MAX_ERROR_BODY = 64 * 1024


def connection_failure(exc: aiohttp.ClientError, deployment: Deployment) -> UpstreamFailure:
    return UpstreamFailure(scrub(str(exc), deployment) or type(exc).__name__, status=None, kind="connection")


async def post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str], deployment: Deployment
) -> aiohttp.ClientResponse:
    """The provider's 200 response, unread; anything else raises UpstreamFailure."""
    data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
    try:
        response = await session.post(url, data=data, headers={"Content-Type": "application/json", **headers})
    except aiohttp.ClientError as exc:
        raise connection_failure(exc, deployment) from None
    if response.status != 200:
        try:
            error = await response.content.read(_MAX_ERROR_BODY)
        finally:
            response.release()
        raise failure_from_response(response.status, error, response.headers, deployment)
    return response


async def read_json(response: aiohttp.ClientResponse, deployment: Deployment) -> tuple[bytes, dict[str, Any]]:
    """The whole body, and its JSON object."""
    try:
        body = await response.read()
    except aiohttp.ClientError as exc:
        raise connection_failure(exc, deployment) from None
    finally:
        response.release()
    try:
        data = json.loads(body)
    except ValueError:
        raise UpstreamFailure("the provider answered with a body that is not JSON", status=502) from None
    return body, data if isinstance(data, dict) else {}


async def body_lines(response: aiohttp.ClientResponse, deployment: Deployment) -> AsyncIterator[bytes]:
    """A streamed body's lines as they arrive; a connection lost mid-body (the provider dropped
    it, a truncated chunked body) raises UpstreamFailure, which the route sends as an error event."""
    try:
        async for line in response.content:
            yield line
    except aiohttp.ClientError as exc:
        raise connection_failure(exc, deployment) from None
