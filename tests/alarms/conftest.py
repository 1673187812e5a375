from __future__ import annotations

import datetime as dt
import uuid
import zoneinfo
from collections.abc import Iterable
from pathlib import Path

import pytest

from analytics.jobs import run_once
from meterline.layout import DataLayout
from meterline.usage_record import UsageRecord
from tests.ledger_fixtures import write_ledger

TZ = "Asia/Shanghai"


def spend(layout: DataLayout, rows: Iterable[tuple[dt.date, str, str, float]], team: str = "support") -> None:
    """Ledger records costing `usd` on local `day` for (agent, model), then the marts refreshed."""
    records = []
    for n, (day, agent, model, usd) in enumerate(rows):
        start = dt.datetime.combine(day, dt.time(12), zoneinfo.ZoneInfo(TZ)).astimezone(dt.UTC)
        records.append(
            UsageRecord(
                request_id=f"alarm-{uuid.uuid4().hex}-{n}",
                trace_id="0" * 32,
                span_id="0" * 16,
                ts_start=start,
                ts_end=start,
                latency_ms=100.0,
                agent_id=agent,
                team=team,
                operation="chat",
                model_requested=model,
                model=model,
                provider="openai",
                date=start.date(),
                cost_usd=usd,
            )
        )
    write_ledger(layout, records)
    run_once(layout, TZ)


@pytest.fixture
def layout(tmp_path: Path) -> DataLayout:
    return DataLayout.at(tmp_path / "data")
