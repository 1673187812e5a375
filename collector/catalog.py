"""The DuckDB catalog: a small database file holding views `usage` and `spans` over the Parquet
(and `quarantine`: the usage records refused at ingest or by analytics, with their reasons).

The file holds no data, only view definitions, so it is opened briefly: the collector opens it
read-write for a moment at startup and when a table's first file appears; readers (CLI `sql`,
dashboard) open it read-only. DuckDB lets many read-only processes in at once but a writer
only when nobody else has it open, hence the short retry loop around opening.

The `date` column is both in every file and in the hive path (`date=YYYY-MM-DD/`). Checked
with DuckDB 2.0 and Polars 2.1: with hive partitioning on, both take the value from the path,
keep the column where the file has it, and type it as a date: DuckDB via its default
`hive_types_autocast` (with autocast off it would be VARCHAR), Polars because the file's type
wins. The views pin `hive_types={'date': DATE}` so no setting can turn it into a string. Since
the writer derives the folder from the rows' own date, path and file never disagree. Polars
readers: `pl.scan_parquet(layout.table_glob(t), hive_partitioning=True)` gives `pl.Date`.

An S3 target has no catalog file: DuckDB could read S3 only through its httpfs extension,
which it would download at run time. `connect` instead lists the files through pyarrow's S3
filesystem and registers them as Arrow datasets, which DuckDB scans with its built-in Arrow
support (projection and filter pushdown included), under the same view names.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from meterline.layout import PARTITION_KEY, SPANS_TABLE, USAGE_TABLE, DataLayout
from meterline.quarantine import QUARANTINE_TABLE, quarantine_schema
from meterline.span_row import span_arrow_schema
from meterline.storage.base import StorageTarget
from meterline.storage.local import LocalTarget
from meterline.usage_record import usage_arrow_schema

TABLE_SCHEMAS: dict[str, Callable[[], pa.Schema]] = {USAGE_TABLE: usage_arrow_schema, SPANS_TABLE: span_arrow_schema}
"""The tables the collector writes and compacts."""
VIEW_SCHEMAS: dict[str, Callable[[], pa.Schema]] = {**TABLE_SCHEMAS, QUARANTINE_TABLE: quarantine_schema}
"""Every view: the tables, plus the quarantine (refused usage records and why; meterline/quarantine.py)."""

_SCALAR_TYPES: dict[pa.DataType, str] = {
    pa.string(): "VARCHAR",
    pa.binary(): "BLOB",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    pa.timestamp("us", tz="UTC"): "TIMESTAMPTZ",  # what DuckDB reads a UTC-adjusted Parquet timestamp as
}


class CatalogBusy(Exception):
    """Another process held the catalog file for longer than the retry budget."""


def has_files(layout: DataLayout, table: str) -> bool:
    return any(layout.table_dir(table).glob(f"{PARTITION_KEY}=*/*.parquet"))


def duckdb_type(arrow_type: pa.DataType) -> str:
    if isinstance(arrow_type, pa.MapType):
        return f"MAP({duckdb_type(arrow_type.key_type)}, {duckdb_type(arrow_type.item_type)})"
    if isinstance(arrow_type, pa.ListType):
        return f"{duckdb_type(arrow_type.value_type)}[]"
    return _SCALAR_TYPES[arrow_type]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def view_sql(layout: DataLayout, table: str, with_files: bool) -> str:
    if with_files:
        source = (
            f"read_parquet({_quote(layout.table_glob(table))}, hive_partitioning = true, "
            f"union_by_name = true, hive_types = {{'{PARTITION_KEY}': DATE}})"
        )
        return f'CREATE OR REPLACE VIEW "{table}" AS SELECT * FROM {source}'
    # No file yet, so read_parquet would fail on an empty glob: a typed, empty stand-in.
    columns = ", ".join(f'CAST(NULL AS {duckdb_type(f.type)}) AS "{f.name}"' for f in VIEW_SCHEMAS[table]())
    return f'CREATE OR REPLACE VIEW "{table}" AS SELECT {columns} WHERE false'


def ensure_catalog(layout: DataLayout, timeout_s: float = 2.0) -> frozenset[str]:
    """Create or refresh the catalog; returns the tables whose views read Parquet (the others
    are empty placeholders until their first file appears). Raises CatalogBusy on lock timeout."""
    live = frozenset(table for table in VIEW_SCHEMAS if has_files(layout, table))
    layout.root.mkdir(parents=True, exist_ok=True)
    with _connect(layout, read_only=False, timeout_s=timeout_s) as con:
        for table in VIEW_SCHEMAS:
            con.execute(view_sql(layout, table, table in live))
    return live


def open_catalog(layout: DataLayout, read_only: bool = True, timeout_s: float = 2.0) -> duckdb.DuckDBPyConnection:
    """A connection with the `usage` and `spans` views; the caller closes it, soon."""
    if not layout.catalog_path.exists():
        ensure_catalog(layout, timeout_s)
    return _connect(layout, read_only=read_only, timeout_s=timeout_s)


def _connect(layout: DataLayout, read_only: bool, timeout_s: float) -> duckdb.DuckDBPyConnection:
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(layout.catalog_path), read_only=read_only)
        except duckdb.IOException as exc:
            # The only IOException worth waiting out is another process's lock on the file.
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise CatalogBusy(f"{layout.catalog_path} is held by another process: {exc}") from exc
        time.sleep(delay)
        delay = min(delay * 2, 0.2)


def connect(target: StorageTarget, timeout_s: float = 2.0) -> duckdb.DuckDBPyConnection:
    """A read-only view of the ledger for any storage target: views `usage` and `spans` over
    the files published when it was opened. The caller closes it, soon."""
    if isinstance(target, LocalTarget):
        return open_catalog(target.layout, read_only=True, timeout_s=timeout_s)
    con = duckdb.connect()
    for table, schema in VIEW_SCHEMAS.items():
        paths = [part.path for files in target.partitions(table).values() for part in files]
        dataset = ds.dataset(paths, schema=schema(), format="parquet", filesystem=target.filesystem)
        con.register(f"{table}_files", dataset)
        con.execute(f'CREATE VIEW "{table}" AS SELECT * FROM "{table}_files"')
    return con
