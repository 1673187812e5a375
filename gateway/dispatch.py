"""The model-call routes dispatched straight from ASGI, ahead of Starlette's middleware and router.

Starlette passes every request through ServerErrorMiddleware, the user middleware,
ExceptionMiddleware, the router's match loop and request_response's exception wrapper, each
with its own `send` wrapper. The model-call routes (/v1/chat/completions and its siblings) are
exact-path POSTs whose errors their endpoints already render (`Call.fail`), so `GatewayApp`
looks their path up in a dict and calls the endpoint with the same error handling as that stack:
- a GatewayError the endpoint raises becomes its OpenAI error JSON (ExceptionMiddleware);
- any other exception is logged with its traceback, answered 502 `gateway_error` and re-raised
  for the server (ServerErrorMiddleware);
- an exception while the response is being sent is logged and re-raised, the server closes
  the connection (a stream that has started cannot change its status).
Everything else takes Starlette's path: other paths, other methods (405 there), a root path,
lifespan, and `telemetry.spool_flush_ms: 0`, whose DurableResponses middleware must see the
response's last byte.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway.errors import GatewayError, UpstreamError, error_response
from gateway.telemetry.sink import TelemetrySink

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Response]]


class GatewayApp(Starlette):
    def __init__(self, *, direct: Mapping[str, Endpoint], sink: TelemetrySink, **starlette: Any) -> None:
        """`direct` maps an exact POST path to its endpoint; each must also be a Starlette route,
        which serves the path when the direct dispatch steps aside."""
        super().__init__(**starlette)
        self._direct = dict(direct)
        self._sink = sink

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        endpoint = self._direct.get(scope["path"]) if scope["type"] == "http" else None
        if endpoint is None or scope["method"] != "POST" or scope.get("root_path") or self._sink.sync_commit:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        request = Request(scope, receive, send)
        try:
            response = await endpoint(request)
        except GatewayError as error:
            response = error_response(error)
        except Exception:
            await unexpected_error(request)(scope, receive, send)
            raise
        try:
            await response(scope, receive, send)
        except Exception:
            unexpected_error(request)
            raise


def unexpected_error(request: Request) -> Response:
    """Logs the exception being handled with its traceback; the client gets OpenAI error JSON
    (502 `gateway_error`) and never the traceback. Both dispatch paths report through here."""
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(UpstreamError("The gateway could not complete the request.", code="gateway_error"))
