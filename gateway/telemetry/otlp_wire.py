"""OTLP protobuf bytes written directly from the gateway's records: the telemetry hot path.

Building `LogRecord` and `Span` messages attribute by attribute through the protobuf runtime
costs ~70 us per usage record and ~40 us per span here. These functions write the same wire
bytes with plain byte concatenation instead, and cache the encoded key/value pairs that repeat
from request to request (agent, team, model, provider, ...). The messages they produce parse
to exactly what `meterline.otlp_usage.to_log_record` and `gateway.telemetry.spans` build;
tests/gateway/telemetry/test_otlp_wire.py holds them to that.

Wire notes: proto3 leaves default-valued plain fields out, but a set oneof member (AnyValue's
value) and a set sub-message (Span.status) are always written, even when empty or zero.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import operator
import struct
from collections.abc import Iterable
from typing import Any

from gateway.routing.router import Attempt
from meterline import semconv
from meterline.arrow_rows import column_types
from meterline.semconv import METERLINE_USAGE_SCHEMA_VERSION
from meterline.usage_record import SCHEMA_VERSION, USAGE_EVENT_NAME, UsageRecord

try:
    from gateway.telemetry import _otlp_encode as _native
except ImportError:  # built optionally (setup.py); the Python encoder writes the same bytes
    _native = None  # type: ignore[assignment]
    logging.getLogger(__name__).warning("gateway: native OTLP encoder not built; using the Python encoder")

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_DOUBLE = struct.Struct("<d")
_FIXED64 = struct.Struct("<Q")
_CACHE_LIMIT = 50_000
_kv_cache: dict[tuple[int, str, Any, type], bytes] = {}

SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3
STATUS_UNSET, STATUS_ERROR = 0, 2


def _varint(n: int) -> bytes:
    n &= 0xFFFF_FFFF_FFFF_FFFF  # a negative int64 is ten bytes of two's complement
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = [_varint(n) for n in range(1 << 14)]
"""Every one- and two-byte varint, precomputed: lengths and token counts are nearly all below 16,384."""


def varint(n: int) -> bytes:
    return _VARINTS[n] if 0 <= n < 16384 else _varint(n)


def field(number: int, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, bytes."""
    return varint(number << 3 | 2) + varint(len(payload)) + payload


def _any(value: Any) -> bytes:
    """An AnyValue's bytes (the oneof member is written even when it is zero or empty)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, int):
        return b"\x18" + varint(value)
    if isinstance(value, float):
        return b"\x21" + _DOUBLE.pack(value)
    if isinstance(value, str):
        data = value.encode()
        return b"\x0a" + varint(len(data)) + data
    if isinstance(value, dict):
        return field(6, b"".join(field(1, _kv(k, v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return field(5, b"".join(field(1, _any(v)) for v in value))
    data = str(value).encode()  # as gateway.telemetry.spans does for any other type
    return b"\x0a" + varint(len(data)) + data


def _kv(key: str, value: Any) -> bytes:
    """A KeyValue's bytes."""
    data = key.encode()
    return b"\x0a" + varint(len(data)) + data + field(2, _any(value))


_VOLATILE = frozenset(
    {
        "request_id", "trace_id", "span_id", "usage_raw",
        semconv.METERLINE_REQUEST_ID, semconv.GEN_AI_RESPONSE_ID,
    }
)  # fmt: skip
"""String attributes that differ on every request: never worth a cache entry."""


_prefixes: dict[str, bytes] = {}
"""Key -> the KeyValue bytes before the value's length: key tag, key, value tag."""


def _direct(number: int, key: str, any_value: bytes) -> bytes:
    prefix = _prefixes.get(key)
    if prefix is None:
        data = key.encode()
        prefix = _prefixes[key] = b"\x0a" + varint(len(data)) + data + b"\x12"
    size = len(any_value)
    kv = prefix + (_VARINTS[size] if size < 16384 else _varint(size)) + any_value
    size = len(kv)
    return _TAGS[number] + (_VARINTS[size] if size < 16384 else _varint(size)) + kv


_TAGS = [bytes((number << 3 | 2,)) for number in range(16)]


def attribute(number: int, key: str, value: Any) -> bytes:
    """One entry of the repeated KeyValue field `number` (< 16), tag and length included. Numbers
    and per-request strings are written directly; other strings and booleans (agent, team, model,
    status, ...) repeat from request to request and come from a cache."""
    kind = type(value)
    if kind is int:
        return _direct(number, key, b"\x18" + (_VARINTS[value] if 0 <= value < 16384 else _varint(value)))
    if kind is float:
        return _direct(number, key, b"\x21" + _DOUBLE.pack(value))
    if kind is str and key in _VOLATILE:
        data = value.encode()
        return _direct(number, key, b"\x0a" + varint(len(data)) + data)
    if isinstance(value, (dict, list, tuple)):
        return field(number, _kv(key, value))
    cache_key = (number, key, value, kind)  # with the type, True and 1 get separate entries
    encoded = _kv_cache.get(cache_key)
    if encoded is None:
        if len(_kv_cache) >= _CACHE_LIMIT:
            _kv_cache.clear()  # a flood of distinct values; start over, cheaply
        encoded = _kv_cache[cache_key] = field(number, _kv(key, value))
    return encoded


def python_attributes(number: int, values: Iterable[tuple[str, Any]]) -> bytes:
    """Repeated KeyValue field `number`, skipping None values as `spans.attributes` does."""
    return b"".join([attribute(number, key, value) for key, value in values if value is not None])


def native() -> bool:
    """Whether the native helper (`_otlp_encode.pyx`) was built."""
    return _native is not None


def attributes(number: int, values: Iterable[tuple[str, Any]]) -> bytes:
    """`python_attributes`, written by the native helper (`_otlp_encode.pyx`) when it is built."""
    if _native is None:
        return python_attributes(number, values)
    return _native.attributes(number, values, attribute)


def _micros(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


_TIMESTAMP, _DATE, _FLOAT = range(3)


@functools.cache
def _usage_plan() -> tuple[tuple[str, ...], operator.attrgetter[Any], tuple[tuple[int, int], ...]]:
    """The usage columns, a getter for all their values at once, and (index, conversion) for
    the columns whose value changes on the way to an AnyValue (see meterline.otlp_usage)."""
    conversions = {dt.datetime: _TIMESTAMP, dt.date: _DATE, float: _FLOAT}
    names = tuple(column_types(UsageRecord))
    special = tuple(
        (index, conversions[t])
        for index, (t, _nullable) in enumerate(column_types(UsageRecord).values())
        if t in conversions
    )
    return names, operator.attrgetter(*names), special


def usage_log_record(record: UsageRecord) -> bytes:
    """The serialized `LogRecord` that `meterline.otlp_usage.to_log_record(record)` builds."""
    names, getter, special = _usage_plan()
    values = list(getter(record))
    for index, conversion in special:
        value = values[index]
        if value is not None:
            if conversion == _TIMESTAMP:
                values[index] = _micros(value)
            elif conversion == _DATE:
                values[index] = value.isoformat()
            else:
                values[index] = float(value)
    schema_version = attribute(6, METERLINE_USAGE_SCHEMA_VERSION, SCHEMA_VERSION)
    parts = (schema_version, attributes(6, zip(names, values, strict=True)))
    end_ns = _micros(record.ts_end) * 1000
    time_ns = _FIXED64.pack(end_ns)
    return b"".join(
        (
            b"\x09", time_ns,  # time_unix_nano (1, fixed64)
            *parts,
            field(9, bytes.fromhex(record.trace_id)),
            field(10, bytes.fromhex(record.span_id)),
            b"\x59", time_ns,  # observed_time_unix_nano (11, fixed64)
            field(12, USAGE_EVENT_NAME.encode()),
        )
    )  # fmt: skip


def _ns(value: dt.datetime) -> int:
    # The same rounding as gateway.telemetry.spans._ns, so both encoders agree to the nanosecond.
    return int(value.timestamp() * 1_000_000) * 1000


def span(
    *,
    trace_id: str,
    span_id: str,
    parent_span_id: str | None,
    name: str,
    kind: int,
    start_ns: int,
    end_ns: int,
    attrs: Iterable[tuple[str, Any]],
    error: bool,
) -> bytes:
    """A serialized `Span` (fields in number order; the status is always present)."""
    parts = [field(1, bytes.fromhex(trace_id)), field(2, bytes.fromhex(span_id))]
    if parent_span_id:
        parts.append(field(4, bytes.fromhex(parent_span_id)))
    parts.append(field(5, name.encode()))
    parts.append(b"\x30" + varint(kind))
    if start_ns:
        parts.append(b"\x39" + _FIXED64.pack(start_ns))
    if end_ns:
        parts.append(b"\x41" + _FIXED64.pack(end_ns))
    parts.append(attributes(9, attrs))
    parts.append(field(15, b"\x18" + varint(STATUS_ERROR) if error else b""))
    return b"".join(parts)


def server_span(
    record: UsageRecord,
    *,
    parent_span_id: str | None,
    route: str,
    response_id: str | None = None,
    finish_reasons: list[str] | None = None,
) -> bytes:
    """The bytes of `gateway.telemetry.spans.server_span` with the same arguments."""
    attrs = (
        (semconv.GEN_AI_OPERATION_NAME, record.operation),
        (semconv.GEN_AI_PROVIDER_NAME, record.provider),
        (semconv.GEN_AI_REQUEST_MODEL, record.model_requested),
        (semconv.GEN_AI_RESPONSE_MODEL, record.model),
        (semconv.GEN_AI_RESPONSE_ID, response_id),
        (semconv.GEN_AI_RESPONSE_FINISH_REASONS, finish_reasons or None),
        (semconv.GEN_AI_USAGE_INPUT_TOKENS, record.input_tokens),
        (semconv.GEN_AI_USAGE_OUTPUT_TOKENS, record.output_tokens),
        (semconv.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, record.cache_read_input_tokens),
        (semconv.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, record.cache_creation_input_tokens),
        (semconv.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, record.reasoning_output_tokens),
        (semconv.METERLINE_AGENT_ID, record.agent_id),
        (semconv.METERLINE_TEAM, record.team),
        (semconv.METERLINE_PROJECT, record.project),
        (semconv.METERLINE_COST_USD, record.cost_usd),
        (semconv.METERLINE_REQUEST_ID, record.request_id),
        (semconv.METERLINE_STREAM, record.stream),
        (semconv.METERLINE_TTFT_MS, record.ttft_ms),
        (semconv.HTTP_ROUTE, route),
        (semconv.HTTP_RESPONSE_STATUS_CODE, record.http_status),
        (semconv.ERROR_TYPE, record.error_type),
    )
    return span(
        trace_id=record.trace_id,
        span_id=record.span_id,
        parent_span_id=parent_span_id,
        name=f"{record.operation} {record.model_requested}",
        kind=SPAN_KIND_SERVER,
        start_ns=_ns(record.ts_start),
        end_ns=_ns(record.ts_end),
        attrs=attrs,
        error=record.http_status >= 500,
    )


def attempt_span(record: UsageRecord, attempt: Attempt, span_id: str) -> bytes:
    """The bytes of `gateway.telemetry.spans.attempt_span` for the child span id `span_id`."""
    d = attempt.deployment
    attrs = (
        (semconv.GEN_AI_OPERATION_NAME, record.operation),
        (semconv.GEN_AI_PROVIDER_NAME, d.provider),
        (semconv.GEN_AI_REQUEST_MODEL, d.model),
        (semconv.METERLINE_DEPLOYMENT_ID, d.id),
        (semconv.METERLINE_PATH, d.path),
        (semconv.HTTP_RESPONSE_STATUS_CODE, attempt.status),
        (semconv.ERROR_TYPE, attempt.error),
    )
    return span(
        trace_id=record.trace_id,
        span_id=span_id,
        parent_span_id=record.span_id,
        name=f"{record.operation} {d.model}",
        kind=SPAN_KIND_CLIENT,
        start_ns=attempt.started_ns,
        end_ns=attempt.ended_ns,
        attrs=attrs,
        error=attempt.outcome != "ok",
    )
