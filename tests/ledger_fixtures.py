"""A deterministic usage ledger on disk, for any stage's tests (analytics, dashboards, collector).

Costs are whole nanodollars (prices below are per token in nanodollars), so every `cost_usd`
has at most 9 decimals and `exact_usd(...)` sums them without rounding error: tests can
compare money with `==`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal

import pyarrow.parquet as pq

from meterline.layout import USAGE_TABLE, DataLayout, atomic_target, publish
from meterline.usage_record import UsageRecord, usage_table

AGENTS: tuple[tuple[str, str], ...] = (
    ("support-bot", "support"),
    ("triage-bot", "support"),
    ("research-agent", "research"),
    ("billing-bot", "finance"),
)
"""(agent_id, team)."""

MODELS: tuple[tuple[str, str, int, int], ...] = (
    ("gpt-4o-mini", "openai", 150, 600),
    ("gpt-4o", "openai", 2_500, 10_000),
    ("claude-sonnet-4", "anthropic", 3_000, 15_000),
)
"""(model, provider, input and output price per token in nanodollars)."""


def sample_records(today: dt.date, days: int = 5, per_day: int = 24) -> list[UsageRecord]:
    """`per_day` requests on each of the `days` days ending `today` (UTC dates).

    Every 9th request failed before any provider answered (model None, no tokens, no cost),
    so the mart must fall back to `model_requested`; every 7th was served by a fallback model.
    """
    records: list[UsageRecord] = []
    for offset in range(days):
        day = today - dt.timedelta(days=offset)
        for i in range(per_day):
            agent_id, team = AGENTS[(i + offset) % len(AGENTS)]
            requested, provider, in_price, out_price = MODELS[(i * 7 + offset) % len(MODELS)]
            failed = i % 9 == 4
            fallback = not failed and i % 7 == 3
            model: str | None = requested
            if fallback:
                model, provider, in_price, out_price = MODELS[0]
            input_tokens = 0 if failed else 100 + (i * 37 + offset * 11) % 900
            output_tokens = 0 if failed else 20 + (i * 53 + offset * 5) % 400
            nanodollars = input_tokens * in_price + output_tokens * out_price
            start = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(minutes=i * 13 % 1440)
            latency_ms = float(200 + (i * 31) % 1800)
            records.append(
                UsageRecord(
                    request_id=f"req-{day.isoformat()}-{i:04d}",
                    trace_id=f"{offset:016x}{i:016x}",
                    span_id=f"{i:016x}",
                    ts_start=start,
                    ts_end=start + dt.timedelta(milliseconds=latency_ms),
                    latency_ms=latency_ms,
                    agent_id=agent_id,
                    team=team,
                    operation="chat",
                    model_requested=requested,
                    date=day,
                    project="helpdesk" if team == "support" else None,
                    key_alias=f"{agent_id}-key",
                    tags={"cost_center": f"cc-{100 + i % 3}"},
                    model=None if failed else model,
                    provider=None if failed else provider,
                    input_tokens=input_tokens,
                    output_tokens=output_tokens,
                    cost_usd=nanodollars / 1_000_000_000,
                    price_version=None if failed else "litellm-1.106.2",
                    status="error" if failed else "ok",
                    http_status=502 if failed else 200,
                    error_type="upstream_unavailable" if failed else None,
                    attempts=2 if fallback else 1,
                    fallback_used=fallback,
                    env="test",
                    tenant="default",
                )
            )
    return records


def write_ledger(layout: DataLayout, records: list[UsageRecord]) -> None:
    """Write `records` as one new Parquet part per date partition, the way the collector does:
    to a hidden temp name, then published into `usage/date=YYYY-MM-DD/`."""
    by_day: dict[dt.date, list[UsageRecord]] = defaultdict(list)
    for record in records:
        by_day[record.date].append(record)
    for day, day_records in sorted(by_day.items()):
        folder = layout.partition_dir(USAGE_TABLE, day)
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / layout.new_part_name()
        temp = atomic_target(final)
        pq.write_table(usage_table([r.as_row() for r in day_records]), temp)
        publish(temp, final)


def exact_usd(records: Iterable[UsageRecord]) -> float:
    """The float nearest the exact decimal sum of the records' costs."""
    return float(sum((Decimal(repr(r.cost_usd)) for r in records), Decimal(0)))
