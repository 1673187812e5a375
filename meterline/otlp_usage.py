"""Usage records on the OTLP wire: one LogRecord each, event name `meterline.usage`.

Each column travels as a typed attribute of the same name (timestamps as integer
microseconds since the epoch, dates as ISO strings, tags as a key/value list). The gateway
encodes with `to_log_record`; the collector decodes with `from_log_record`. Both follow the
column types of `UsageRecord`, so neither can drift from the ledger schema.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue, KeyValueList
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from meterline.arrow_rows import column_types
from meterline.semconv import METERLINE_USAGE_SCHEMA_VERSION
from meterline.usage_record import SCHEMA_VERSION, USAGE_EVENT_NAME, UsageRecord

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class UsageDecodeError(ValueError):
    """A log record claimed to be a usage record but does not fit the schema."""


@functools.cache
def _types() -> dict[str, tuple[Any, bool]]:
    return column_types(UsageRecord)


def _to_micros(value: dt.datetime) -> int:
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _encode(py_type: Any, value: Any) -> AnyValue:
    if py_type is str:
        return AnyValue(string_value=value)
    if py_type is bool:
        return AnyValue(bool_value=value)
    if py_type is int:
        return AnyValue(int_value=value)
    if py_type is float:
        return AnyValue(double_value=value)
    if py_type is dt.datetime:
        return AnyValue(int_value=_to_micros(value))
    if py_type is dt.date:
        return AnyValue(string_value=value.isoformat())
    return AnyValue(
        kvlist_value=KeyValueList(values=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in value.items()])
    )


def to_log_record(record: UsageRecord) -> LogRecord:
    attributes = [KeyValue(key=METERLINE_USAGE_SCHEMA_VERSION, value=AnyValue(int_value=SCHEMA_VERSION))]
    for name, (py_type, _nullable) in _types().items():
        value = getattr(record, name)
        if value is not None:
            attributes.append(KeyValue(key=name, value=_encode(py_type, value)))
    end_ns = _to_micros(record.ts_end) * 1000
    return LogRecord(
        time_unix_nano=end_ns,
        observed_time_unix_nano=end_ns,
        event_name=USAGE_EVENT_NAME,
        trace_id=bytes.fromhex(record.trace_id),
        span_id=bytes.fromhex(record.span_id),
        attributes=attributes,
    )


def is_usage_log(log: LogRecord) -> bool:
    return log.event_name == USAGE_EVENT_NAME


def _decode(name: str, py_type: Any, value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    try:
        if py_type is str and kind == "string_value":
            return value.string_value
        if py_type is bool and kind == "bool_value":
            return value.bool_value
        if py_type is int and kind == "int_value":
            return value.int_value
        if py_type is float and kind in ("double_value", "int_value"):
            return float(getattr(value, kind))
        if py_type is dt.datetime and kind == "int_value":
            return _EPOCH + dt.timedelta(microseconds=value.int_value)
        if py_type is dt.date and kind == "string_value":
            return dt.date.fromisoformat(value.string_value)
        if py_type == dict[str, str] and kind == "kvlist_value":
            return {kv.key: kv.value.string_value for kv in value.kvlist_value.values}
    except ValueError as exc:
        raise UsageDecodeError(f"attribute {name!r}: {exc}") from exc
    raise UsageDecodeError(f"attribute {name!r}: expected {getattr(py_type, '__name__', py_type)}, got {kind}")


def from_log_record(log: LogRecord) -> dict[str, Any]:
    """A usage row (column -> value) from a LogRecord; raises UsageDecodeError if it does not fit."""
    present = {kv.key: kv.value for kv in log.attributes}
    row: dict[str, Any] = {}
    for name, (py_type, nullable) in _types().items():
        value = present.get(name)
        if value is None:
            if name == "trace_id" and log.trace_id:
                row[name] = log.trace_id.hex()
            elif name == "span_id" and log.span_id:
                row[name] = log.span_id.hex()
            elif nullable:
                row[name] = None
            elif (default := _DEFAULTS.get(name, _MISSING)) is not _MISSING:
                row[name] = default
            else:
                raise UsageDecodeError(f"missing required attribute {name!r}")
            continue
        row[name] = _decode(name, py_type, value)
    return row


_MISSING = object()


def _field_defaults() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(UsageRecord):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


_DEFAULTS = _field_defaults()
