"""A ledger with known totals for the dashboard's tests, the pages run through AppTest, and the
expected numbers computed apart from the code under test: DuckDB SQL over the ledger's Parquet."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from pathlib import Path
from typing import Any

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from analytics.jobs import run_once
from meterline.layout import DataLayout
from meterline.usage_record import UsageRecord
from tests.ledger_fixtures import sample_records, write_ledger

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")
BUDGET = {
    "name": "support-monthly",
    "scope": {"team": "support"},
    "period": "month",
    "amount_usd": 20.0,
    "thresholds": [50.0, 80.0, 100.0],
}


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    return DataLayout.at(tmp_path / "data")


def refused_records(today: dt.date) -> list[UsageRecord]:
    """Requests the gateway turned away (429, 403) asking for an alias no provider answered:
    they must be counted as refusals, never as a model called `claude-nope`."""
    base = sample_records(today, days=1, per_day=1)[0]
    start = dt.datetime.combine(today, dt.time(0, 30), dt.UTC)
    return [
        dataclasses.replace(
            base,
            request_id=f"req-refused-{today.isoformat()}-{i}",
            trace_id=f"{0xABC + i:032x}",
            ts_start=start + dt.timedelta(minutes=i),
            ts_end=start + dt.timedelta(minutes=i, milliseconds=3),
            latency_ms=3.0,
            model_requested="claude-nope",
            model=None,
            provider=None,
            input_tokens=0,
            output_tokens=0,
            cost_usd=0.0,
            price_version=None,
            status="error",
            http_status=429 if i % 2 == 0 else 403,
            error_type="rate_limit_exceeded" if i % 2 == 0 else "model_not_allowed",
            attempts=0,
            fallback_used=False,
        )
        for i in range(3)
    ]


def build_ledger(layout: DataLayout, timezone: str = "UTC", days: int = 40) -> list[UsageRecord]:
    """`days` UTC days ending today (always past the 1st of the local month) plus three
    refusals today; marts built in `timezone`."""
    today = dt.datetime.now(dt.UTC).date()
    records = sample_records(today, days=days) + refused_records(today)
    write_ledger(layout, records)
    run_once(layout, timezone)
    return records


def sql(layout: DataLayout, query: str, timezone: str = "UTC") -> list[tuple[Any, ...]]:
    """`query` over a view `usage` of the ledger's Parquet, with `local_date` in `timezone` and
    money as exact decimals: the expected numbers, computed apart from Polars and the marts."""
    db = duckdb.connect()
    db.execute(f"SET TimeZone = '{timezone}'")
    files = str(layout.root / "usage" / "*" / "*.parquet").replace("'", "''")
    db.execute(
        "CREATE VIEW usage AS SELECT *, CAST(ts_start AS DATE) AS local_date,"
        f" CAST(cost_usd AS DECIMAL(38, 12)) AS cost FROM read_parquet('{files}', hive_partitioning = false)"
    )
    return db.execute(query).fetchall()


def usd(value: object) -> float:
    """An exact decimal sum as the float nearest it (what the pages round from)."""
    return float(value) if value is not None else 0.0  # type: ignore[arg-type]


def open_app(
    layout: DataLayout,
    monkeypatch: pytest.MonkeyPatch,
    page: str | None = None,
    timezone: str = "UTC",
    budgets: list[dict[str, object]] | None = None,
    **query: Any,
) -> AppTest:
    """The dashboard over `layout`, on `page` (a views/ file name) with `query` in its URL."""
    monkeypatch.setenv("METERLINE_DATA_DIR", str(layout.root))
    monkeypatch.setenv("METERLINE_TIMEZONE", timezone)
    monkeypatch.setenv("METERLINE_BUDGETS", json.dumps(budgets if budgets is not None else [BUDGET]))
    app = AppTest.from_file(APP, default_timeout=60)
    app.query_params.update(query)
    app.run()
    if page:
        app.switch_page(f"views/{page}.py")
        app.query_params.update(query)
        app.run()
    assert not app.exception, app.exception
    return app


def metrics(app: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in app.metric}
