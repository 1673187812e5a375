"""The `latency_daily` mart: latency and time-to-first-token quantiles per local day and model.

Quantiles do not add up across days, so every day is computed from its own ledger rows;
interpolation is linear between the two nearest ranks (DuckDB's `quantile_cont`).
"""

from __future__ import annotations

import polars as pl

MART = "latency_daily"

QUANTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))

LATENCY_DAILY_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "model": pl.String(),
        "requests": pl.Int64(),
        **{f"latency_{name}_ms": pl.Float64() for name, _ in QUANTILES},
        "streams": pl.Int64(),
        **{f"ttft_{name}_ms": pl.Float64() for name, _ in QUANTILES},
    }
)
"""`streams` counts the requests with a time to first token; its quantiles are over those."""
LATENCY_DAILY_COLUMNS: tuple[str, ...] = tuple(LATENCY_DAILY_SCHEMA.names())
GROUP_KEYS: tuple[str, ...] = ("date", "model")
INPUT_COLUMNS: tuple[str, ...] = (*GROUP_KEYS, "latency_ms", "ttft_ms")
"""The billable-row columns the quantiles need."""


def latency_rows(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Mart rows from `billable` ledger rows, sorted by the keys."""
    return (
        rows.group_by(GROUP_KEYS)
        .agg(
            pl.len().cast(pl.Int64).alias("requests"),
            *(pl.col("latency_ms").quantile(q, "linear").alias(f"latency_{n}_ms") for n, q in QUANTILES),
            pl.col("ttft_ms").count().cast(pl.Int64).alias("streams"),
            *(pl.col("ttft_ms").quantile(q, "linear").alias(f"ttft_{n}_ms") for n, q in QUANTILES),
        )
        .select(LATENCY_DAILY_COLUMNS)
        .cast(LATENCY_DAILY_SCHEMA)
        .sort(GROUP_KEYS, nulls_last=True)
    )
