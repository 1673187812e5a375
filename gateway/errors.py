"""The gateway's one error hierarchy and its one map from upstream (LiteLLM) exceptions.

Every error a client sees is a `GatewayError` rendered as OpenAI error JSON
(`{"error": {"message", "type", "param", "code"}}`) with the status its class names.
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

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.error_type, "param": self.param, "code": self.code}}


class InvalidRequest(GatewayError):
    status_code = 400
    error_type = "invalid_request_error"


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


class UpstreamRateLimited(GatewayError):
    status_code = 429
    error_type = "rate_limit_error"
    code = "upstream_rate_limited"


class UpstreamError(GatewayError):
    """The provider failed in a way the agent cannot fix (including a bad provider key)."""

    status_code = 502
    error_type = "api_error"
    code = "upstream_error"


class UpstreamUnavailable(GatewayError):
    status_code = 503
    error_type = "api_error"
    code = "upstream_unavailable"


class UpstreamTimeout(GatewayError):
    status_code = 504
    error_type = "api_error"
    code = "upstream_timeout"


class GatewayNotReady(GatewayError):
    status_code = 503
    error_type = "api_error"
    code = "not_ready"


# LiteLLM exception class name -> gateway error class. Names, not classes, so this table can be
# read (and tested) without importing LiteLLM; most specific names first.
UPSTREAM_ERROR_MAP: dict[str, type[GatewayError]] = {
    "ContextWindowExceededError": InvalidRequest,
    "ContentPolicyViolationError": InvalidRequest,
    "UnsupportedParamsError": InvalidRequest,
    "BadRequestError": InvalidRequest,
    "UnprocessableEntityError": InvalidRequest,
    "NotFoundError": ModelNotFound,
    "AuthenticationError": UpstreamError,
    "PermissionDeniedError": UpstreamError,
    "RateLimitError": UpstreamRateLimited,
    "Timeout": UpstreamTimeout,
    "ServiceUnavailableError": UpstreamUnavailable,
    "APIConnectionError": UpstreamError,
    "InternalServerError": UpstreamError,
    "BadGatewayError": UpstreamError,
    "APIError": UpstreamError,
}


def from_upstream(exc: BaseException) -> GatewayError:
    """Map an exception raised by the upstream call; unknown ones become a 502, never a 500."""
    if isinstance(exc, GatewayError):
        return exc
    for cls in type(exc).__mro__:
        target = UPSTREAM_ERROR_MAP.get(cls.__name__)
        if target is not None:
            # Provider messages can echo request details but never our keys; keep them short.
            message = str(getattr(exc, "message", "") or exc).strip()[:500] or cls.__name__
            return target(f"upstream provider error: {message}")
    return UpstreamError("upstream provider call failed")


def error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(error.body()),
        status_code=error.status_code,
        media_type="application/json",
        headers=headers,
    )
