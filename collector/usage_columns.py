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
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
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


def _index(name: str) -> int:
    return _layout()[1][name].index


_REQUEST_ID, _TRACE_ID, _SPAN_ID = _index("request_id"), _index("trace_id"), _index("span_id")


class UsageColumns:
    """Accumulates usage records column by column; `table()` builds the Arrow table."""

    def __init__(self) -> None:
        self._rows: list[list[Any]] = []
        """Each record's values in column order; transposed (in C) by `table`."""

    def add(self, log: LogRecord) -> None:
        """Append one record; raises UsageDecodeError (from `from_log_record`) for a bad one."""
        _, _, fills = _layout()
        fast = _fast_specs()
        values = list(fills)
        # The hot loop: about 40 attributes per record, so locals and tuples, no attribute lookups.
        for kv in log.attributes:
            spec = fast.get(kv.key)
            if spec is None:
                continue  # the schema-version attribute, or one a newer gateway added
            index, expected, special = spec
            value = kv.value
            kind = value.WhichOneof("value")
            if kind != expected:
                self._add_row(from_log_record(log))  # a float sent as an int, or an error
                return
            if not special:
                values[index] = getattr(value, kind)
            elif special is _KVLIST:
                values[index] = [(t.key, t.value.string_value) for t in value.kvlist_value.values]
            else:
                try:
                    values[index] = dt.date.fromisoformat(value.string_value)
                except ValueError:
                    self._add_row(from_log_record(log))  # raises with the attribute's name
                    return
        if values[_TRACE_ID] is _REQUIRED and log.trace_id:
            values[_TRACE_ID] = log.trace_id.hex()
        if values[_SPAN_ID] is _REQUIRED and log.span_id:
            values[_SPAN_ID] = log.span_id.hex()
        if _REQUIRED in values:
            self._add_row(from_log_record(log))  # raises, naming the missing attribute
            return
        if not values[_REQUEST_ID]:
            raise UsageDecodeError("empty request_id")
        self._rows.append(values)

    def _add_row(self, row: dict[str, Any]) -> None:
        """A record decoded the slow way, converted to this class's column representations."""
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
        self._rows.append(values)

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
