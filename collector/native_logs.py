"""Usage log records decoded by the native extension (`collector/_otlp_native.pyx`) when built.

The extension walks the request's protobuf bytes itself and fills Arrow buffers, which pyarrow
takes over without a copy, so neither upb messages nor Python objects per value are made for the
regular case (only the request ids, for dedup, become str). It answers only what it
can answer exactly; every other attribute goes to `usage_columns`' decoder (and its cache), every
other record to `from_log_record`, so both paths accept, convert and refuse the same records
(tests/collector/test_native_logs.py holds them to identical tables). Without the extension
(no compiler at install time) `available()` is False and decode.py keeps the pure-Python path.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from collector.errors import BadRequest
from collector.usage_columns import (
    _REQUEST_ID,
    _REQUIRED,
    _SPAN_ID,
    _TRACE_ID,
    BadKeyValue,
    _decode_raw,
    _layout,
    _raw_cache,
    row_values,
)
from meterline.otlp_usage import UsageDecodeError, from_log_record
from meterline.usage_record import usage_arrow_schema

if TYPE_CHECKING:
    from collector._otlp_native import ExportedColumns

try:
    from collector import _otlp_native
except ImportError as exc:  # built optionally: no compiler, or a source checkout never installed
    _otlp_native = None  # type: ignore[assignment]
    _MISSING_REASON = str(exc)

log = logging.getLogger(__name__)

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
# Column kinds as the extension numbers them (K_* in _arrow_columns.pxd).
_KIND_CODES: dict[Any, int] = {str: 0, bool: 1, int: 2, dt.datetime: 2, float: 3, dt.date: 4, dict[str, str]: 5}


class Rejects(Protocol):
    def reject(self, where: str, reason: str, record: bytes | None = None) -> None: ...


@functools.cache
def available() -> bool:
    """Whether the extension is built; says so once in the log when it is not."""
    if _otlp_native is None:
        log.warning("collector: native OTLP decoder not built (%s); using the pure-Python decoder", _MISSING_REASON)
        return False
    return True


@functools.cache
def _date_columns() -> frozenset[int]:
    _, specs, _ = _layout()
    return frozenset(c.index for c in specs.values() if c.py_type is dt.date)


def _days(value: Any) -> Any:
    return value.toordinal() - _EPOCH_ORDINAL if isinstance(value, dt.date) else value


def _slow_attribute(raw: bytes) -> tuple[int, Any]:
    """The Python decoder's answer for one KeyValue's bytes, dates as days since the epoch."""
    hit = _raw_cache.get(raw)
    slot, value = hit if hit is not None else _decode_raw(raw)
    if slot in _date_columns():
        value = _days(value)
    return slot, value


@functools.cache
def _decoder() -> Any:
    names, specs, fills = _layout()
    kinds = tuple(_KIND_CODES[specs[name].py_type] for name in names)
    keys = tuple(name.encode() for name in names)
    fills = tuple(_days(fill) for fill in fills)
    return _otlp_native.UsageDecoder(keys, kinds, fills, _REQUIRED, _REQUEST_ID, _TRACE_ID, _SPAN_ID, _slow_attribute)


def decode_usage(body: bytes, batch: Rejects) -> tuple[pa.Table, list[str]]:
    """The usage records of a protobuf ExportLogsServiceRequest as a ledger table, and its
    request ids; rejected records go to `batch.reject`; BadRequest when the body is not a
    well-formed request."""

    def irregular(where: str, record: bytes) -> list[Any] | None:
        try:
            full = LogRecord.FromString(record)
        except DecodeError as exc:
            raise BadRequest(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None
        try:
            values = row_values(from_log_record(full))
        except UsageDecodeError as exc:
            batch.reject(where, str(exc), record)
            return None
        for index in _date_columns():
            values[index] = _days(values[index])
        return values

    try:
        columns, request_ids = _decoder().decode(body, irregular)
    except (_otlp_native.WireError, BadKeyValue) as exc:
        raise BadRequest(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None
    return columns_table(columns), request_ids


def columns_table(columns: ExportedColumns) -> pa.Table:
    """The extension's columns -> a table of the ledger schema: pyarrow takes the buffers over
    through the Arrow C data interface, without a copy and in one call for all 38 columns."""
    schema = usage_arrow_schema()
    return pa.Table.from_batches([pa.RecordBatch._import_from_c(columns.address, schema)], schema=schema)
