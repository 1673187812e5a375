"""`meterline quotas rebuild`: the day's and month's counters restored from the ledger.

When Redis lost the counters (gateway/quotas/reset.py raised the alarm), every limit counts
from zero again. The ledger still holds every request that was billed, so the windows that
matter for more than a minute are recomputed from it: per agent and per team, the tokens of
the current day (`tokens_per_day`), the dollars of the current day (`usd_per_day`) and of the
current month (`usd_per_month`), in the configured time zone's windows, exactly as the gateway
settles them (input + output tokens, each request's cost rounded to nano-dollars; response
cache hits cost nothing). Minute windows (`rpm`, `tpm`) are not restored: they end within a
minute anyway.

A counter is only ever raised to the ledger's figure, never lowered: the counter may already
hold requests that are in flight or not yet in the ledger (the collector publishes Parquet
about once a second), so a rebuild can make a limit stricter, never looser. Requests still in
a gateway's spool or the collector's WAL when it runs are not in the ledger yet; run it again
a minute later to include them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
import redis

from analytics.ledger_source import LedgerSource
from gateway.quotas.plan import SETTLE_GRACE_S
from gateway.quotas.store import NANOS_PER_USD
from gateway.quotas.windows import Window, WindowSpan, ZoneCalendar
from meterline.storage.base import parse_partition

RESTORED_LIMITS: tuple[tuple[str, Window, str], ...] = (
    ("tokens_per_day", Window.DAY, "tokens"),
    ("usd_per_day", Window.DAY, "usd_nanos"),
    ("usd_per_month", Window.MONTH, "usd_nanos"),
)
"""(limit, window, ledger total) of every counter a rebuild writes."""

# KEYS: counters. ARGV: per key "value expire_at_ms". Raises each counter to at least its value
# and sets its expiry; replies with each counter's value before, as one space-separated string.
RAISE_LUA = """
local before = {}
for i = 1, #KEYS do
  local cur = tonumber(redis.call('GET', KEYS[i]) or '0')
  before[i] = string.format('%d', cur)
  local value = tonumber(ARGV[2 * i - 1])
  if value > cur then
    redis.call('SET', KEYS[i], ARGV[2 * i - 1])
    redis.call('PEXPIREAT', KEYS[i], ARGV[2 * i])
  end
end
return table.concat(before, ' ')
"""


@dataclass(frozen=True, slots=True)
class RestoredCounter:
    key: str
    """Without the store's prefix: `agent:<id>:<limit>:<window key>`."""
    ledger: int
    before: int

    @property
    def after(self) -> int:
        return max(self.ledger, self.before)


@dataclass(frozen=True, slots=True)
class Windows:
    day: WindowSpan
    month: WindowSpan

    def of(self, window: Window) -> WindowSpan:
        return self.day if window is Window.DAY else self.month


def current_windows(timezone: str, now: float) -> Windows:
    calendar = ZoneCalendar(timezone)
    return Windows(calendar.span(Window.DAY, now), calendar.span(Window.MONTH, now))


def ledger_totals(ledger: LedgerSource, windows: Windows) -> pl.DataFrame:
    """Per scope (`agent` / `team`) and id: the day's tokens and nano-dollars and the month's
    nano-dollars, from the ledger's rows that started inside the windows (each request once)."""
    first = dt.datetime.fromtimestamp(windows.month.start, dt.UTC).date()
    last = dt.datetime.fromtimestamp(windows.month.end, dt.UTC).date()
    frames = []
    for name, files in ledger.partitions().items():
        day = parse_partition(name)
        if day is not None and first <= day <= last:
            frames.append(ledger.scan(name, files))
    columns = {"scope": pl.String, "id": pl.String, "tokens": pl.Int64, "usd_nanos": pl.Int64}
    if not frames:
        return pl.DataFrame(schema={**columns, "month_usd_nanos": pl.Int64})
    start_us = round(windows.month.start * 1_000_000)
    end_us = round(windows.month.end * 1_000_000)
    day_start_us, day_end_us = round(windows.day.start * 1_000_000), round(windows.day.end * 1_000_000)
    ts = pl.col("ts_start").dt.epoch("us")
    rows = (
        pl.concat(frames, how="vertical_relaxed")
        .filter((ts >= start_us) & (ts < end_us) & ~pl.col("cache_hit").fill_null(False))
        .unique(subset="request_id", keep="any")
        .select(
            "agent_id",
            "team",
            (ts >= day_start_us).and_(ts < day_end_us).alias("today"),
            # What the gateway settles: input + output tokens, the cost rounded to nano-dollars.
            (pl.col("input_tokens").fill_null(0).clip(0) + pl.col("output_tokens").fill_null(0).clip(0)).alias("t"),
            (pl.col("cost_usd").fill_null(0.0) * NANOS_PER_USD).round(0).cast(pl.Int64).clip(0).alias("u"),
        )
        .collect()
    )
    totals = []
    for scope, column in (("agent", "agent_id"), ("team", "team")):
        totals.append(
            rows.filter(pl.col(column).is_not_null() & (pl.col(column) != ""))
            .group_by(pl.col(column).alias("id"))
            .agg(
                pl.col("t").filter(pl.col("today")).sum().alias("tokens"),
                pl.col("u").filter(pl.col("today")).sum().alias("usd_nanos"),
                pl.col("u").sum().alias("month_usd_nanos"),
            )
            .with_columns(pl.lit(scope).alias("scope"))
        )
    return pl.concat(totals).select("scope", "id", "tokens", "usd_nanos", "month_usd_nanos").sort("scope", "id")


def counters_from(totals: pl.DataFrame, windows: Windows) -> dict[str, tuple[int, float]]:
    """Counter key -> (value, expires_at), named as gateway/quotas/plan.py names them."""
    counters: dict[str, tuple[int, float]] = {}
    for row in totals.iter_rows(named=True):
        for limit, window, total in RESTORED_LIMITS:
            span = windows.of(window)
            value = row["month_usd_nanos"] if window is Window.MONTH else row[total]
            key = f"{row['scope']}:{row['id']}:{limit}:{span.key}"
            counters[key] = (int(value or 0), span.end + SETTLE_GRACE_S)
    return counters


def raise_counters(
    client: redis.Redis, prefix: str, counters: dict[str, tuple[int, float]], *, dry_run: bool = False
) -> list[RestoredCounter]:
    """Raise each counter to at least its ledger value (one script per batch of keys); with
    `dry_run`, only read what they hold."""
    keys = sorted(counters)
    restored: list[RestoredCounter] = []
    script = client.register_script(RAISE_LUA)
    for offset in range(0, len(keys), 500):
        batch = keys[offset : offset + 500]
        full = [prefix + key for key in batch]
        if dry_run:
            values = client.mget(full)
            before = [int(v or 0) for v in values]
        else:
            args: list[str] = []
            for key in batch:
                value, expires_at = counters[key]
                args += [str(value), str(int(expires_at * 1000))]
            reply = script(keys=full, args=args)
            text = reply.decode() if isinstance(reply, bytes) else str(reply)
            before = [int(word) for word in text.split()]
        restored += [RestoredCounter(key, counters[key][0], was) for key, was in zip(batch, before, strict=True)]
    return restored
