"""Spans decoded by the native extension (`collector/_otlp_spans.pyx`) when it is built.

The extension reads plain spans (the gateway's and most SDKs') straight from the wire bytes into
Arrow buffers, attributes JSON included, and pyarrow takes them over without a copy through the
Arrow C data interface; any other span is parsed with the protobuf runtime and goes through
`decode._span_values`, the reference. Resources and scopes, once per request, are parsed with
the protobuf runtime too. tests/collector/test_native_spans.py holds both paths to identical tables.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.errors import BadRequest
from meterline import semconv
from meterline.span_row import span_arrow_schema

try:
    from collector import _otlp_native, _otlp_spans
except ImportError:  # built optionally; native_logs.available() says so in the log
    _otlp_spans = None  # type: ignore[assignment]

_BAD_BODY = "body is not a protobuf ExportTraceServiceRequest"

PROMOTED = (
    semconv.GEN_AI_OPERATION_NAME,
    semconv.GEN_AI_REQUEST_MODEL,
    semconv.GEN_AI_RESPONSE_MODEL,
    semconv.METERLINE_AGENT_ID,
    semconv.GEN_AI_USAGE_INPUT_TOKENS,
    semconv.GEN_AI_USAGE_OUTPUT_TOKENS,
    semconv.METERLINE_COST_USD,
)
"""The attributes `decode._span_values` promotes to columns, in column order (str x4, int x2, float)."""


class Rejects(Protocol):
    def reject(self, where: str, reason: str) -> None: ...


SpanValues = Callable[[Span, str | None, str | None, str], tuple[Any, ...]]
ResourceValues = Callable[[Resource], tuple[str | None, str]]


def available() -> bool:
    return _otlp_spans is not None


@functools.cache
def _decoder() -> Any:
    kinds = {number: name.removeprefix("SPAN_KIND_") for name, number in Span.SpanKind.items()}
    codes = {number: name.removeprefix("STATUS_CODE_") for name, number in Status.StatusCode.items()}
    # The extension fixes the column layout; a schema change must change it too.
    layouts = {pa.string(): 0, pa.int64(): 2, pa.float64(): 3, pa.date32(): 4}
    schema = span_arrow_schema()
    expected = tuple(layouts.get(pa.int64() if pa.types.is_timestamp(f.type) else f.type, -1) for f in schema)
    if _otlp_spans.column_kinds() != expected:
        raise RuntimeError("collector/_otlp_spans.pyx's columns do not match the spans schema")
    return _otlp_spans.SpanDecoder(
        tuple(key.encode() for key in PROMOTED), tuple(kinds[k] for k in range(6)), tuple(codes[c] for c in range(3))
    )


def _parse(message: Any, raw: bytes) -> Any:
    try:
        return message.FromString(raw)
    except DecodeError as exc:
        raise BadRequest(f"{_BAD_BODY}: {exc}") from None


def decode_spans(body: bytes, batch: Rejects, span_values: SpanValues, resource_values: ResourceValues) -> pa.Table:
    """The spans of a protobuf ExportTraceServiceRequest as a `spans` table; spans without valid
    ids go to `batch.reject`; BadRequest when the body is not a well-formed request."""

    def resource(raw: bytes) -> tuple[str | None, str]:
        return resource_values(_parse(Resource, raw))

    def scope(raw: bytes) -> str | None:
        name: str = _parse(InstrumentationScope, raw).name
        return name or None

    def irregular(where: str, raw: bytes, service: str | None, scope: str | None, res: str) -> tuple[Any, ...] | None:
        span = _parse(Span, raw)
        if len(span.trace_id) != 16 or len(span.span_id) != 8:
            batch.reject(where, "trace_id/span_id missing")
            return None
        return span_values(span, service, scope, res)

    try:
        columns = _decoder().decode(body, resource, scope, irregular)
    except _otlp_native.WireError as exc:
        raise BadRequest(f"{_BAD_BODY}: {exc}") from None
    schema = span_arrow_schema()
    # One call imports all 22 columns, without a copy: the buffers are already in Arrow's layout.
    return pa.Table.from_batches([pa.RecordBatch._import_from_c(columns.address, schema)], schema=schema)
