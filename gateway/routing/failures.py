"""An upstream attempt that failed, classified once: retryable or terminal, and what the client sees.

Retryable: 408, 409, 429, 5xx, timeouts, connection errors. Terminal: every other 4xx. A
provider's 401/403 is the gateway's problem (its provider key), not the agent's, so the agent
sees a 502; every other upstream status is kept, and an upstream 429's Retry-After passes through.
"""

from __future__ import annotations

from gateway.errors import GatewayError
from gateway.scrubbing import MASK, scrub_text

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 520, 522, 524, 529})

_TYPE_BY_STATUS = {
    400: "invalid_request_error",
    404: "invalid_request_error",
    408: "timeout",
    409: "api_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
}


# OpenAI's code for a status, used when the path that served the request lost the provider's own
# code (LiteLLM's exceptions do not keep it), so both paths answer alike.
_CODE_BY_STATUS = {404: "model_not_found", 429: "rate_limit_exceeded"}


class UpstreamFailure(Exception):
    """One failed attempt against one deployment."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        kind: str = "http",
        retry_after: float | None = None,
        code: str | None = None,
        context_window: bool = False,
    ) -> None:
        # The providers scrub what they quote with the key versions they hold; this pass masks
        # anything shaped like a credential, whichever path or step made the failure.
        message = scrub_text(message)
        super().__init__(message)
        self.message = message
        self.status = status
        self.kind = kind
        """http, timeout or connection."""
        self.retry_after = retry_after
        # A code that quoted a credential is no code a client can act on.
        self.code = None if code is None or MASK in scrub_text(code) else code
        self.context_window = context_window
        self.attempts: list[object] = []
        """Filled in by the router when it gives up: every attempt made for the request."""

    @property
    def retryable(self) -> bool:
        return self.kind in ("timeout", "connection") or (self.status in RETRYABLE_STATUS)

    def to_client_error(self) -> GatewayError:
        if self.kind == "timeout":
            return UpstreamHTTPError(
                f"The upstream provider timed out: {self.message}", 504, "timeout", "upstream_timeout"
            )
        if self.kind == "connection":
            return UpstreamHTTPError(
                f"Could not reach the upstream provider: {self.message}", 502, "api_error", "upstream_unreachable"
            )
        status = self.status or 502
        if status in (401, 403):
            return UpstreamHTTPError(
                "The gateway's credentials for the upstream provider were refused.",
                502,
                "api_error",
                "upstream_auth_error",
            )
        error_type = _TYPE_BY_STATUS.get(status, "api_error" if status >= 500 else "invalid_request_error")
        headers = {"retry-after": str(max(1, round(self.retry_after)))} if self.retry_after is not None else {}
        code = self.code or _CODE_BY_STATUS.get(status)
        return UpstreamHTTPError(f"upstream provider error: {self.message}", status, error_type, code, headers)


class UpstreamHTTPError(GatewayError):
    """A client-facing error whose status comes from the upstream."""

    def __init__(
        self, message: str, status: int, error_type: str, code: str | None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, code=code)
        self.status_code = status
        self.error_type = error_type
        self.headers = headers or {}

    @property
    def ledger_error_type(self) -> str:
        if self.code in ("upstream_timeout", "upstream_unreachable", "upstream_auth_error"):
            return self.code
        return f"upstream_http_{self.status_code}"
