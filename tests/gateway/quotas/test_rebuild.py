"""`meterline quotas rebuild` (gateway/quotas/rebuild.py): today's and this month's counters,
in the configured time zone, recomputed from a ledger with known totals and raised in Redis,
never lowered; a dry run writes nothing."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest
import redis

from meterline.cli.main import main
from meterline.layout import DataLayout
from meterline.usage_record import UsageRecord
from tests.conftest import REDIS_URL
from tests.ledger_fixtures import write_ledger

ZONE = "Asia/Shanghai"
GRACE_S = 900  # gateway/quotas/plan.py SETTLE_GRACE_S: counters outlive their window by this much


def record(request_id: str, agent: str, team: str, at: dt.datetime, tokens: tuple[int, int], nanos: int,
           **extra: object) -> UsageRecord:  # fmt: skip
    start = at.astimezone(dt.UTC)
    return UsageRecord(
        request_id=request_id,
        trace_id="0" * 32,
        span_id="0" * 16,
        ts_start=start,
        ts_end=start + dt.timedelta(milliseconds=5),
        latency_ms=5.0,
        agent_id=agent,
        team=team,
        operation="chat",
        model_requested="gpt",
        date=start.date(),
        model="gpt-4o-mini",
        provider="openai",
        input_tokens=tokens[0],
        output_tokens=tokens[1],
        cost_usd=nanos / 1_000_000_000,
        **extra,  # type: ignore[arg-type]
    )


def test_rebuild_restores_the_days_and_months_counters_from_the_ledger(
    tmp_path: Path, redis_prefix: str, capsys: pytest.CaptureFixture[str]
) -> None:
    zone = zoneinfo.ZoneInfo(ZONE)
    local_now = dt.datetime.now(zone)
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    month_start = day_start.replace(day=1)
    day_end = (day_start + dt.timedelta(days=1)).replace(hour=0)  # Shanghai has no DST
    month_end = (month_start + dt.timedelta(days=32)).replace(day=1)
    second = dt.timedelta(seconds=1)
    records = [
        record("r1", "a1", "t1", day_start + second, (100, 50), 1_500),
        record("r2", "a1", "t1", day_start + 2 * second, (10, 5), 250),
        record("r3", "a2", "t1", day_start + 3 * second, (7, 3), 999_999_999_999),
        record("r4", "a1", "t1", month_start + second, (1_000, 1_000), 7_000_000),  # today too on the 1st
        record("r5", "a3", "t2", month_start - second, (5_000, 0), 10**9),  # last month: not counted
        record("r6", "a1", "t1", day_start + 4 * second, (300, 0), 0, cache_hit=True, cost_saved_usd=1.0),
        record("r7", "a3", "t2", day_start + 5 * second, (0, 0), 0, status="error", http_status=502),
        record("r8", "a3", "t2", day_start + 6 * second, (20, 0), 3),
    ]
    layout = DataLayout.at(tmp_path / "data")
    write_ledger(layout, records)
    write_ledger(layout, records[:1])  # r1 again in a second part (a compaction caught mid-way): billed once

    expected: dict[str, int] = {}
    day_key, month_key = f"d{day_start.date().isoformat()}", f"M{month_start:%Y-%m}"
    for r in records:
        local = r.ts_start.astimezone(zone)
        if r.cache_hit or (local.year, local.month) != (local_now.year, local_now.month):
            continue
        nanos = round(r.cost_usd * 1_000_000_000)
        for scope, ident in (("agent", r.agent_id), ("team", r.team)):
            for limit, window, amount in (
                ("tokens_per_day", day_key, r.input_tokens + r.output_tokens),
                ("usd_per_day", day_key, nanos),
                ("usd_per_month", month_key, nanos),
            ):
                key = f"{scope}:{ident}:{limit}:{window}"
                expected.setdefault(key, 0)
                if window == month_key or local.date() == local_now.date():
                    expected[key] += amount
    assert expected[f"agent:a1:usd_per_month:{month_key}"] == 1_500 + 250 + 7_000_000
    assert expected[f"team:t1:usd_per_day:{day_key}"] >= 1_500 + 250 + 999_999_999_999

    config = tmp_path / "meterline.yaml"
    config.write_text(
        f"timezone: {ZONE}\nstorage: {{data_dir: {tmp_path / 'data'}}}\n"
        f"quota_store: {{redis_url: '{REDIS_URL}', key_prefix: '{redis_prefix}'}}\n"
    )
    raw = redis.Redis.from_url(REDIS_URL)
    try:
        higher = f"agent:a1:tokens_per_day:{day_key}"
        raw.set(redis_prefix + higher, 10**9)  # counted since the reset beyond the ledger: kept
        raw.set(redis_prefix + f"team:t2:usd_per_month:{month_key}", 1)  # below the ledger: raised

        assert main(["quotas", "rebuild", "--dry-run", "--config", str(config)]) == 0
        assert raw.get(redis_prefix + f"agent:a2:tokens_per_day:{day_key}") is None
        dry = capsys.readouterr().out

        assert main(["quotas", "rebuild", "--config", str(config)]) == 0
        out = capsys.readouterr().out
        stored = {key: int(raw.get(redis_prefix + key) or -1) for key in expected}
        expiry = {key: raw.pexpiretime(redis_prefix + key) for key in expected if key != higher}
    finally:
        raw.close()
    assert stored == {**expected, higher: 10**9}
    day_expiry_ms = int((day_end.timestamp() + GRACE_S) * 1000)
    month_expiry_ms = int((month_end.timestamp() + GRACE_S) * 1000)
    assert expiry == {key: month_expiry_ms if month_key in key else day_expiry_ms for key in expiry}
    assert len(expected) == 3 * (3 + 2)  # three limits for agents a1, a2, a3 and teams t1, t2
    assert f"{len(expected)} counters from" in out and f": {len(expected) - 1} raised, 1 already at or above" in out
    assert f": {len(expected) - 1} would raise, 1 already at or above" in dry


def test_rebuild_has_help_and_refuses_without_a_redis_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "meterline", "quotas", "rebuild", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "Counters are never lowered" in done.stdout and "--dry-run" in done.stdout
    config = tmp_path / "meterline.yaml"
    config.write_text(f"storage: {{data_dir: {tmp_path}}}\n")
    assert main(["quotas", "rebuild", "--config", str(config)]) == 2
    assert "quota_store.redis_url is not set" in capsys.readouterr().err
