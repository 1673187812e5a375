"""The Athena named queries (spend by agent, team and model, per day and per month) give the
marts' numbers: their text, transpiled by sqlglot from Athena's dialect to DuckDB's, runs over a
generated ledger (with every request stored twice, as a compaction caught half-way leaves it)
and equals the spend marts rolled up to the same grouping, money to the cent."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import duckdb
import polars as pl
import pytest
import sqlglot

from analytics.jobs import run_once
from analytics.spend_daily import MART as DAILY
from analytics.spend_monthly import MART as MONTHLY
from meterline.layout import USAGE_TABLE, DataLayout
from tests.analytics.ledger_gen import generated_records
from tests.infra.conftest import TIMEZONE, Deployment
from tests.infra.terraform import MODULE, resources
from tests.ledger_fixtures import write_ledger

TEMPLATE = MODULE / "queries" / "spend.sql.tftpl"
DATABASE = "acme_meterline_prod"
FIRST = dt.date(2026, 10, 27)  # across a month end, so local months differ from UTC ones
QUERIES = {
    f"spend-by-{dimension.removesuffix('_id')}-per-{period}": (dimension, period)
    for dimension in ("agent_id", "team", "model")
    for period in ("day", "month")
}


def render(dimension: str, period: str, timezone: str = TIMEZONE) -> str:
    """What the module's templatefile() makes of the template (plain `${name}` substitutions)."""
    values = {"database": DATABASE, "dimension": dimension, "period": period, "timezone": timezone}
    text = TEMPLATE.read_text(encoding="utf-8")
    assert "%{" not in text, "the template must stay plain substitutions (rendered here without Terraform)"
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> DataLayout:
    layout = DataLayout.at(tmp_path_factory.mktemp("athena") / "data")
    records = generated_records(FIRST, 8)
    write_ledger(layout, records)
    write_ledger(layout, records[::3])  # a third of the requests stored twice
    run_once(layout, TIMEZONE)
    return layout


def athena(layout: DataLayout, dimension: str, period: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    sql = sqlglot.transpile(render(dimension, period), read="athena", write="duckdb")[0]
    connection = duckdb.connect()
    connection.execute(f'CREATE SCHEMA "{DATABASE}"')
    glob = layout.table_glob(USAGE_TABLE)
    connection.execute(
        f'CREATE VIEW "{DATABASE}"."usage" AS SELECT * FROM read_parquet(\'{glob}\', hive_partitioning = false)'
    )
    rows = connection.execute(sql).fetchall()
    return {(row[0] if isinstance(row[0], dt.date) else row[0].date(), row[1]): row[2:] for row in rows}


def marts(layout: DataLayout, dimension: str, period: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    mart, key = (DAILY, "date") if period == "day" else (MONTHLY, "month")
    frame = pl.read_parquet(layout.mart_file(mart))
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for row in frame.iter_rows(named=True):
        group = (row[key], row[dimension])
        sums = totals.setdefault(group, [0, 0, 0, 0, Decimal(0)])
        for i, column in enumerate(("requests", "errors", "input_tokens", "output_tokens")):
            sums[i] += row[column]
        sums[4] += Decimal(repr(row["cost_usd"]))
    return {group: (*sums[:4], float(sums[4])) for group, sums in totals.items()}


@pytest.mark.parametrize("name", sorted(QUERIES))
def test_the_named_query_equals_the_marts_to_the_cent(ledger: DataLayout, name: str) -> None:
    dimension, period = QUERIES[name]
    ours, theirs = athena(ledger, dimension, period), marts(ledger, dimension, period)

    assert ours.keys() == theirs.keys()
    for group, expected in theirs.items():
        got = ours[group]
        assert got[:4] == expected[:4], group  # requests, errors and tokens exactly
        assert round(got[4], 2) == round(expected[4], 2) and abs(got[4] - expected[4]) < 1e-6, group
    local_days = {group[0] for group in ours}
    assert len(local_days) == (9 if period == "day" else 2)  # Shanghai days and months, not UTC ones


def test_the_module_plans_exactly_these_queries(deployment: Deployment) -> None:
    planned = resources(deployment.plan, "aws_athena_named_query")
    by_name = {query["name"]: query for query in planned.values()}
    assert set(by_name) == set(QUERIES)
    for name, (dimension, period) in QUERIES.items():
        assert by_name[name]["query"] == render(dimension, period)
        assert by_name[name]["database"] == DATABASE
    workgroup = next(iter(resources(deployment.plan, "aws_athena_workgroup").values()))
    result = workgroup["configuration"][0]["result_configuration"][0]
    assert result["encryption_configuration"][0]["encryption_option"] == "SSE_KMS"
    assert workgroup["configuration"][0]["enforce_workgroup_configuration"] is True
