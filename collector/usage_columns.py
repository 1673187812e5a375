"""Usage log records -> an Arrow table of the ledger schema in one pass: the ingest hot path.

`meterline.otlp_usage.from_log_record` builds a dict per record and Python datetimes per
timestamp; at the collector's rates that (and turning rows back into columns) cost more than
everything else together. Here each attribute goes straight into its column list and
timestamps stay integer microseconds until Arrow converts the whole column. A record
that is anything but the regular case (a wrong type, a missing required field) is handed to
`from_log_record`, which either rejects it with its precise reason or decodes it, so both paths
accept and refuse exactly the same records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
from google.protobuf.message import DecodeError
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from meterline.arrow_rows import column_types
from meterline.otlp_usage import UsageDecodeError, from_log_record
from meterline.usage_record import UsageRecord, usage_arrow_schema

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

# How each Python column type travels as an OTLP AnyValue (see meterline.otlp_usage).
_KINDS: dict[Any, str] = {
    str: "string_value",
    bool: "bool_value",
    int: "int_value",
    float: "double_value",
    dt.datetime: "int_value",
    dt.date: "string_value",
    dict[str, str]: "kvlist_value",
}


@dataclass(frozen=True, slots=True)
class _Column:
    index: int
    kind: str
    py_type: Any


@functools.cache
def _layout() -> tuple[tuple[str, ...], dict[str, _Column], tuple[Any, ...]]:
    """Column names, attribute key -> column, and each column's fill for a missing attribute
    (None where nullable, the dataclass default, or _REQUIRED)."""
    names: list[str] = []
    specs: dict[str, _Column] = {}
    fills: list[Any] = []
    defaults: dict[str, Any] = {}
    for f in dataclasses.fields(UsageRecord):
        if f.default is not dataclasses.MISSING:
            defaults[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
            defaults[f.name] = list(default.items()) if isinstance(default, dict) else default
    for index, (name, (py_type, nullable)) in enumerate(column_types(UsageRecord).items()):
        names.append(name)
        specs[name] = _Column(index, _KINDS[py_type], py_type)
        fills.append(None if nullable else defaults.get(name, _REQUIRED))
    return tuple(names), specs, tuple(fills)


class _Required:
    def __repr__(self) -> str:
        return "<required>"


_REQUIRED = _Required()
_KVLIST, _DATE = 1, 2


@functools.cache
def _fast_specs() -> dict[str, tuple[int, str, int]]:
    """Attribute key -> (column index, AnyValue kind, 0 or _KVLIST or _DATE)."""
    _, specs, _ = _layout()
    special = {dict[str, str]: _KVLIST, dt.date: _DATE}
    return {name: (c.index, c.kind, special.get(c.py_type, 0)) for name, c in specs.items()}


class BadKeyValue(ValueError):
    """An attribute's bytes are not a KeyValue: the body is not valid OTLP."""


_UNUSED_SLOT, _IRREGULAR_SLOT = -1, -2
"""Slots for an attribute that is no column, and for one only the slow path decodes."""
_UNUSED: tuple[int, Any] = (_UNUSED_SLOT, None)
_IRREGULAR: tuple[int, Any] = (_IRREGULAR_SLOT, True)
_RAW_CACHE_LIMIT = 100_000
_raw_cache: dict[bytes, tuple[int, Any]] = {}


def _decode_raw(raw: bytes) -> tuple[int, Any]:
    """(slot, value) for one KeyValue's bytes, remembered for the next time the same bytes come."""
    slot = _scalar(raw)
    if slot is None:
        try:
            slot = _decode_attribute(KeyValue.FromString(raw))
        except DecodeError as exc:
            raise BadKeyValue(str(exc)) from None
    if len(_raw_cache) >= _RAW_CACHE_LIMIT:
        _raw_cache.clear()  # request ids and timestamps never repeat; start over, cheaply
    _raw_cache[raw] = slot
    return slot


_DOUBLE = struct.Struct("<d")


def _scalar(raw: bytes) -> tuple[int, Any] | None:
    """The common shape read straight from the bytes: a short key and a string, int, double or
    bool value of a plain column, in the one canonical encoding. Anything else (long fields, other
    kinds, tags, dates, a key that is no column) returns None and takes the protobuf runtime."""
    # KeyValue: 0x0a <key len> <key> 0x12 <value len> AnyValue{<tag> <payload>}
    size = len(raw)
    if size < 6 or raw[0] != 0x0A or raw[1] >= 0x80:
        return None
    key_end = 2 + raw[1]
    if key_end + 3 > size or raw[key_end] != 0x12 or raw[key_end + 1] != size - key_end - 2:
        return None
    spec = _byte_specs().get(raw[2:key_end])
    if spec is None:
        return None
    index, tag = spec
    start = key_end + 3
    if raw[key_end + 2] != tag:
        return None
    if tag == 0x0A:  # string_value: one length byte, then UTF-8 that must decode
        if start >= size or raw[start] != size - start - 1:
            return None
        try:
            return index, raw[start + 1 :].decode()
        except UnicodeDecodeError:
            return None  # the protobuf runtime refuses it with its own message
    if tag == 0x21:  # double_value
        return (index, _DOUBLE.unpack_from(raw, start)[0]) if size - start == 8 else None
    if tag == 0x10:  # bool_value
        return (index, raw[start] != 0) if size - start == 1 and raw[start] < 2 else None
    value = shift = 0  # int_value: a varint, two's complement for negatives
    for position in range(start, size):
        byte = raw[position]
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            if position != size - 1 or shift > 70:
                return None
            return index, value - (1 << 64) if value >= 1 << 63 else value
    return None


@functools.cache
def _byte_specs() -> dict[bytes, tuple[int, int]]:
    """Key bytes -> (column index, AnyValue tag byte) for the plain scalar columns."""
    tags = {"string_value": 0x0A, "bool_value": 0x10, "int_value": 0x18, "double_value": 0x21}
    return {
        name.encode(): (index, tags[kind])
        for name, (index, kind, special) in _fast_specs().items()
        if not special and kind in tags
    }


FullRecord = Callable[[], LogRecord]


def _decode_attribute(kv: KeyValue) -> tuple[int, Any]:
    """(column index, value) for a usage column; (_UNUSED_SLOT, None) for another key;
    _IRREGULAR for a value only `from_log_record` may judge (wrong kind, bad date)."""
    spec = _fast_specs().get(kv.key)
    if spec is None:
        return _UNUSED  # the schema-version attribute, or one a newer gateway added
    index, expected, special = spec
    value = kv.value
    kind = value.WhichOneof("value")
    if kind != expected:
        return _IRREGULAR
    if not special:
        return index, getattr(value, kind)
    if special == _KVLIST:
        return index, [(t.key, t.value.string_value) for t in value.kvlist_value.values]
    try:
        return index, dt.date.fromisoformat(value.string_value)
    except ValueError:
        return _IRREGULAR


def row_values(row: dict[str, Any]) -> list[Any]:
    """A record decoded the slow way (`from_log_record`), in the column representations used here:
    timestamps as integer microseconds, tags as (key, value) pairs."""
    names, specs, _ = _layout()
    if not row["request_id"]:
        raise UsageDecodeError("empty request_id")
    values: list[Any] = []
    for name in names:
        value = row[name]
        if value is not None and specs[name].py_type is dt.datetime:
            delta = value - _EPOCH
            value = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        elif isinstance(value, dict):
            value = list(value.items())
        values.append(value)
    return values


def _index(name: str) -> int:
    return _layout()[1][name].index


_REQUEST_ID, _TRACE_ID, _SPAN_ID = _index("request_id"), _index("trace_id"), _index("span_id")
_COLUMN_INDEXES = tuple(range(len(_layout()[0])))


class UsageColumns:
    """Accumulates usage records column by column; `table()` builds the Arrow table."""

    def __init__(self) -> None:
        self._rows: list[list[Any]] = []
        """Each record's values in column order; transposed (in C) by `table`."""

    def add(self, log: LogRecord) -> None:
        """Append one record; raises UsageDecodeError (from `from_log_record`) for a bad one."""
        values = list(_layout()[2])
        for kv in log.attributes:
            slot, value = _decode_attribute(kv)
            if slot == _IRREGULAR_SLOT:
                self._add_row(from_log_record(log))  # a float sent as an int, or an error
                return
            if slot >= 0:
                values[slot] = value
        self._finish(values, log.trace_id, log.span_id, lambda: log)

    def add_raw(self, attributes: Sequence[bytes], trace_id: bytes, span_id: bytes, full: FullRecord) -> None:
        """`add` for a record parsed with `raw_logs.RawLogRecord`: each attribute is a KeyValue's
        wire bytes, and equal bytes decode to equal values, so the cache answers most of them
        (agent, team, model, tags ... repeat from request to request) without parsing.
        `full()` gives the record as a LogRecord for the irregular cases."""
        # Lookups, pairing and the row fill run inside map() and dict(), in C: ~40 per record.
        hits: list[tuple[int, Any] | None] = list(map(_raw_cache.get, attributes))
        if None in hits:
            for k, hit in enumerate(hits):
                if hit is None:
                    hits[k] = _decode_raw(attributes[k])
        row: dict[int, Any] = dict(hits)  # type: ignore[arg-type]
        if _IRREGULAR_SLOT in row:
            self._add_row(from_log_record(full()))
            return
        values = list(map(row.get, _COLUMN_INDEXES, _layout()[2]))
        self._finish(values, trace_id, span_id, full)

    def _finish(self, values: list[Any], trace_id: bytes, span_id: bytes, full: FullRecord) -> None:
        if values[_TRACE_ID] is _REQUIRED and trace_id:
            values[_TRACE_ID] = trace_id.hex()
        if values[_SPAN_ID] is _REQUIRED and span_id:
            values[_SPAN_ID] = span_id.hex()
        if _REQUIRED in values:
            self._add_row(from_log_record(full()))  # raises, naming the missing attribute
            return
        if not values[_REQUEST_ID]:
            raise UsageDecodeError("empty request_id")
        self._rows.append(values)

    def _add_row(self, row: dict[str, Any]) -> None:
        self._rows.append(row_values(row))

    def table(self) -> pa.Table:
        schema = usage_arrow_schema()
        names, specs, _ = _layout()
        columns = list(zip(*self._rows, strict=True)) if self._rows else [() for _ in names]
        arrays = []
        for name, values in zip(names, columns, strict=True):
            target = schema.field(name).type
            py_type = specs[name].py_type
            if py_type is dt.datetime:
                arrays.append(pa.array(values, type=pa.int64()).cast(target))
            else:
                arrays.append(pa.array(values, type=target))
        return pa.Table.from_arrays(arrays, schema=schema)
