"""`meterline sql`: one query over the ledger's views, refused unless it only reads.

The check is by DuckDB's own parser: exactly one statement, of type SELECT (which covers
`WITH`, `VALUES`, `FROM x`, `SHOW`, `DESCRIBE`, `SUMMARIZE`), or EXPLAIN of one. Everything
else (INSERT, UPDATE, DELETE, CREATE, DROP, COPY ... TO, EXPORT, ATTACH, INSTALL, LOAD, SET,
PRAGMA, CALL, ...) is refused before it runs. The connection is sandboxed as well (ledger.py):
file access only under the data dir, configuration locked.
"""

from __future__ import annotations

import re
from typing import Any

import duckdb

_EXPLAIN = re.compile(r"^\s*EXPLAIN\s+(?:ANALYZE\s+)?", re.IGNORECASE)
_ALLOWED = "SELECT"


class WriteRefused(Exception):
    """A statement that is not a query; the message says which kind and what is allowed."""


def _kind(statement: Any) -> str:
    return str(statement.type).rsplit(".", 1)[-1]


def check(con: duckdb.DuckDBPyConnection, sql: str) -> str:
    """The one statement's text if it only reads; raises WriteRefused otherwise, and
    duckdb.ParserException for text DuckDB cannot parse."""
    statements = con.extract_statements(sql)
    if len(statements) != 1:
        raise WriteRefused(f"expected one SQL statement, got {len(statements)}")
    statement = statements[0]
    kind = _kind(statement)
    if kind == "EXPLAIN":
        # EXPLAIN ANALYZE runs its statement: what it explains must be a query too.
        inner = con.extract_statements(_EXPLAIN.sub("", statement.query, count=1))
        if len(inner) == 1 and _kind(inner[0]) == _ALLOWED:
            return str(statement.query)
        kind = f"EXPLAIN of {'/'.join(_kind(s) for s in inner) or 'nothing'}"
    elif kind == _ALLOWED:
        return str(statement.query)
    raise WriteRefused(f"{kind} statements are refused: the ledger is read-only here (SELECT, WITH, DESCRIBE, EXPLAIN)")


def run(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of a read-only query (`check` first)."""
    cursor = con.execute(check(con, sql))
    if cursor.description is None:
        return [], []
    return [d[0] for d in cursor.description], cursor.fetchall()
