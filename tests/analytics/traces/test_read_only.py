"""analytics/traces/read_only.py and the sandboxed connection (ledger.py): queries run, writes do not."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from analytics.traces.ledger import LedgerMissing, connect
from analytics.traces.read_only import WriteRefused, check, run
from meterline.layout import DataLayout
from meterline.storage.local import LocalTarget
from tests.trace_ledger import TraceLedger


def test_a_query_runs(con: duckdb.DuckDBPyConnection) -> None:
    columns, rows = run(con, "SELECT agent_id, cost_usd FROM usage WHERE cost_usd > 0.0002 ORDER BY agent_id")
    assert columns == ["agent_id", "cost_usd"]
    assert rows == [("research-agent", 0.00024), ("support-bot", 0.000387)]


@pytest.mark.parametrize(
    "sql",
    [
        "WITH x AS (SELECT 1 AS a) SELECT a FROM x",
        "DESCRIBE spans",
        "SHOW TABLES",
        "SUMMARIZE usage",
        "EXPLAIN SELECT * FROM usage",
        "EXPLAIN ANALYZE SELECT count(*) FROM spans",
        "SELECT 1;",
    ],
)
def test_reading_forms_are_allowed(con: duckdb.DuckDBPyConnection, sql: str) -> None:
    assert check(con, sql)
    run(con, sql)


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("DELETE FROM usage", "DELETE"),
        ("UPDATE usage SET cost_usd = 0", "UPDATE"),
        ("INSERT INTO usage SELECT * FROM usage", "INSERT"),
        ("CREATE TABLE t AS SELECT * FROM usage", "CREATE"),
        ("CREATE OR REPLACE VIEW usage AS SELECT 1", "CREATE"),
        ("DROP VIEW usage", "DROP"),
        ("COPY (SELECT * FROM usage) TO 'out.parquet'", "COPY"),
        ("COPY usage FROM 'in.csv'", "COPY"),
        ("EXPORT DATABASE 'dump'", "EXPORT"),
        ("ATTACH 'other.duckdb' AS other", "ATTACH"),
        ("INSTALL httpfs", "LOAD"),
        ("SET enable_external_access = true", "SET"),
        ("PRAGMA enable_profiling", "PRAGMA"),
        ("CALL pragma_version()", "CALL"),
        ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "EXPLAIN of COPY"),
    ],
)
def test_anything_that_is_not_a_query_is_refused(con: duckdb.DuckDBPyConnection, sql: str, kind: str) -> None:
    with pytest.raises(WriteRefused, match=f"^{kind} statements are refused"):
        run(con, sql)


def test_one_statement_at_a_time(con: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(WriteRefused, match="expected one SQL statement, got 2"):
        run(con, "SELECT 1; DELETE FROM usage")
    assert run(con, "SELECT count(*) FROM usage")[1] == [(4,)]


def test_the_connection_reads_no_file_outside_the_data_dir(con: duckdb.DuckDBPyConnection, tmp_path: Path) -> None:
    outside = tmp_path / "secret.csv"
    outside.write_text("a\n1\n")
    with pytest.raises(duckdb.PermissionException):
        run(con, f"SELECT * FROM read_csv('{outside}')")
    with pytest.raises(duckdb.Error):
        con.execute("SET enable_external_access = true")


def test_nothing_is_written_under_the_data_dir(ledger: TraceLedger) -> None:
    before = sorted(p for p in ledger.data_dir.rglob("*"))
    with connect(LocalTarget(DataLayout.at(ledger.data_dir))) as fresh:
        run(fresh, "SELECT count(*) FROM spans")
    assert sorted(p for p in ledger.data_dir.rglob("*")) == before


def test_a_missing_data_dir_is_not_an_empty_ledger(tmp_path: Path) -> None:
    with pytest.raises(LedgerMissing, match="no data dir at"):
        connect(LocalTarget(DataLayout.at(tmp_path / "nowhere")))


def test_an_empty_data_dir_has_empty_views(tmp_path: Path) -> None:
    with connect(LocalTarget(DataLayout.at(tmp_path))) as empty:
        assert run(empty, "SELECT count(*) FROM usage UNION ALL SELECT count(*) FROM spans")[1] == [(0,), (0,)]
