"""The gateway's one error hierarchy, rendered as OpenAI error JSON.

Every error a client sees is a `GatewayError` rendered as OpenAI error JSON
(`{"error": {"message", "type", "param", "code"}}`) with the status its class names. Upstream
failures are classified once in `routing/failures.py` and become `UpstreamHTTPError`s there.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.responses import Response


class GatewayError(Exception):
    status_code = 500
    error_type = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    @property
    def ledger_error_type(self) -> str:
        """The usage record's error_type: stable across upstream paths and providers."""
        return self.code or type(self).__name__

    @property
    def response_headers(self) -> dict[str, str]:
        return dict(getattr(self, "headers", {}) or {})

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(GatewayError):
    status_code = 413
    error_type = "invalid_request_error"
    code = "request_too_large"


class InvalidApiKey(GatewayError):
    status_code = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotAllowed(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "model_not_allowed"


class ModelNotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class RouteNotFound(GatewayError):
    status_code = 404
    error_type = "invalid_request_error"
    code = "unknown_url"


class MethodNotAllowed(GatewayError):
    status_code = 405
    error_type = "invalid_request_error"
    code = "method_not_allowed"


class UpstreamError(GatewayError):
    """The gateway could not get an answer for a reason the agent cannot fix."""

    status_code = 502
    error_type = "api_error"
    code = "upstream_error"


class GatewayNotReady(GatewayError):
    status_code = 503
    error_type = "api_error"
    code = "not_ready"


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(error.body()),
        status_code=error.status_code,
        media_type="application/json",
        headers={**error.response_headers, **(headers or {})},
    )
