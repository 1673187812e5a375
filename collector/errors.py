"""The collector's one error hierarchy; each error knows its HTTP status and its gRPC code
(a google.rpc.Code value), and each transport renders it.

Terminal errors (4xx) mean the sender must not retry the same payload; transient ones (5xx)
mean it should, after `retry_after_s` (OTLP/gRPC: a RetryInfo in the status details).
"""

from __future__ import annotations


class CollectorError(Exception):
    status_code: int = 500
    rpc_code: int = 13  # INTERNAL
    retryable: bool = False
    retry_after_s: int | None = None


class BadRequest(CollectorError):
    """The body cannot be decoded as the OTLP message the endpoint expects."""

    status_code = 400
    rpc_code = 3  # INVALID_ARGUMENT


class PayloadTooLarge(CollectorError):
    """The body (or its decompressed form) exceeds `max_body_bytes`."""

    status_code = 413
    rpc_code = 8  # RESOURCE_EXHAUSTED, without RetryInfo: not retryable


class UnsupportedMediaType(CollectorError):
    """A Content-Type or Content-Encoding the collector does not speak."""

    status_code = 415
    rpc_code = 3  # INVALID_ARGUMENT


class StorageUnavailable(CollectorError):
    """Writing a batch failed for a reason that may pass (disk full, I/O error); retry later."""

    status_code = 503
    rpc_code = 14  # UNAVAILABLE
    retryable = True
    retry_after_s = 5


class Overloaded(CollectorError):
    """More is acknowledged than published (the WAL backlog is over its limit); retry later."""

    status_code = 503
    rpc_code = 8  # RESOURCE_EXHAUSTED with RetryInfo: the OTLP way to push back over gRPC
    retryable = True
    retry_after_s = 2


class Unauthenticated(CollectorError):
    """No bearer token, or one no principal holds (collector.ingest_tokens)."""

    status_code = 401
    rpc_code = 16  # UNAUTHENTICATED


class PermissionDenied(CollectorError):
    """A known principal without the scope the whole request needs (spans to /v1/traces)."""

    status_code = 403
    rpc_code = 7  # PERMISSION_DENIED
