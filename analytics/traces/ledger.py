"""The ledger's views on a sandboxed, in-memory DuckDB connection, for reading only.

The catalog file (`data/meterline.duckdb`) is the collector's: opening it takes a lock and, if
it is missing, writes it. Readers here instead create the same views (collector/catalog.py's
definitions) on an in-memory connection, so a query never writes or locks anything, and never
sees a stale placeholder view. The connection then allows file access only under the data dir
(DuckDB's `allowed_directories` with `enable_external_access = false`, locked), so even a
query that slipped past `read_only.check` could neither read nor write elsewhere. Session time
zone is UTC: timestamps come back as UTC datetimes (DuckDB's Python client needs pytz for it).
"""

from __future__ import annotations

import duckdb

from collector.catalog import VIEW_SCHEMAS, has_files, view_sql
from meterline.storage.base import StorageTarget
from meterline.storage.local import LocalTarget


class LedgerMissing(Exception):
    """The data dir does not exist: a mistyped `--data-dir`, not an empty ledger."""


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect(target: StorageTarget) -> duckdb.DuckDBPyConnection:
    """Views `usage`, `spans` and `quarantine` over the files published when it is called. The
    caller closes the connection. Raises LedgerMissing for a local data dir that is not there."""
    if not isinstance(target, LocalTarget):
        from collector.catalog import connect as connect_remote  # S3: Arrow datasets, in memory

        con = connect_remote(target)
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        return con
    layout = target.layout
    if not layout.root.is_dir():
        raise LedgerMissing(f"no data dir at {layout.root}")
    con = duckdb.connect(":memory:")
    try:
        for table in VIEW_SCHEMAS:
            con.execute(view_sql(layout, table, has_files(layout, table)))
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"SET allowed_directories = [{_quote(str(layout.root) + '/')}]")
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except BaseException:
        con.close()
        raise
    return con
