"""The gateway's errors rendered in Anthropic's error shape, for /v1/messages clients.

`{"type": "error", "error": {"type": ..., "message": ...}}` with the same status the OpenAI
rendering uses; the error type is Anthropic's name for that status.
"""

from __future__ import annotations

import json

from starlette.responses import Response

from gateway.errors import GatewayError

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def anthropic_error_type(status: int) -> str:
    return _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")


def anthropic_error_body(error: GatewayError) -> dict[str, object]:
    return {"type": "error", "error": {"type": anthropic_error_type(error.status_code), "message": error.message}}


def anthropic_error_response(error: GatewayError, headers: dict[str, str] | None = None) -> Response:
    headers = {**error.response_headers, **(headers or {})}
    if "x-request-id" in headers:
        headers["request-id"] = headers["x-request-id"]  # the header Anthropic's SDKs read
    return Response(
        json.dumps(anthropic_error_body(error)),
        status_code=error.status_code,
        media_type="application/json",
        headers=headers,
    )
