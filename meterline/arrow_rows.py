"""Derive Arrow schemas from typed dataclasses, so a record class is its schema's one definition."""

from __future__ import annotations

import dataclasses
import datetime as dt
import types
import typing
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


def _arrow_types() -> dict[Any, pa.DataType]:
    # pyarrow is imported here, not at module level: the gateway uses the record classes but
    # never Arrow, and importing pyarrow would cost it ~40 MiB of resident memory.
    import pyarrow as pa

    return {
        str: pa.string(),
        int: pa.int64(),
        float: pa.float64(),
        bool: pa.bool_(),
        dt.datetime: pa.timestamp("us", tz="UTC"),
        dt.date: pa.date32(),
        dict[str, str]: pa.map_(pa.string(), pa.string()),
    }


def column_types(cls: type) -> dict[str, tuple[Any, bool]]:
    """Column name -> (python type, nullable), read from a dataclass's annotations in field order."""
    hints = typing.get_type_hints(cls)
    out: dict[str, tuple[Any, bool]] = {}
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        nullable = False
        if isinstance(hint, types.UnionType):
            args = typing.get_args(hint)
            members = [m for m in args if m is not type(None)]
            nullable = len(members) != len(args)
            hint = members[0]
        out[f.name] = (hint, nullable)
    return out


def arrow_schema(cls: type, metadata: dict[bytes, bytes] | None = None) -> pa.Schema:
    import pyarrow as pa

    arrow_types = _arrow_types()
    return pa.schema(
        [pa.field(name, arrow_types[t], nullable=nullable) for name, (t, nullable) in column_types(cls).items()],
        metadata=metadata,
    )


def rows_to_table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Row dicts -> a table of exactly `schema` (missing keys become nulls; dicts become maps)."""
    import pyarrow as pa

    columns = {
        name: [list(value.items()) if isinstance(value := row.get(name), dict) else value for row in rows]
        for name in schema.names
    }
    return pa.table(columns, schema=schema)
