"""The `latency_daily` mart: latency and time-to-first-token quantiles per local day and model.

Quantiles do not add up across days, so every day is computed from its own ledger rows, and
they are exact: NumPy's selection (`np.quantile`, linear interpolation between the two nearest
ranks, as DuckDB's `quantile_cont` and Polars' "linear"), which for a few quantiles of a large
group costs a fraction of sorting it.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

import numpy as np
import polars as pl

from meterline.layout import DataLayout

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


class DayLatencies:
    """Latency and TTFT values per (local day, model), held until their day is complete.

    A local day's rows arrive from one or two UTC partitions; `add` takes each partition's rows,
    `finish` turns one day's values into mart rows and drops them.
    """

    def __init__(self) -> None:
        self._values: dict[tuple[dt.date, str | None], list[tuple[np.ndarray, np.ndarray, int]]] = defaultdict(list)

    def add(self, rows: pl.DataFrame) -> None:
        """Rows with at least the `INPUT_COLUMNS` (billable rows: local `date`, answering `model`)."""
        # Values gathered into one list per group by Polars: splitting the frame per group
        # (`partition_by`) copied every column and cost twice as much.
        groups = rows.group_by(GROUP_KEYS).agg(
            pl.col("latency_ms").drop_nulls(), pl.col("ttft_ms").drop_nulls(), pl.len().alias("rows")
        )
        for day, model, latency, ttft, count in zip(
            groups["date"], groups["model"], groups["latency_ms"], groups["ttft_ms"], groups["rows"], strict=True
        ):
            self._values[(day, model)].append((latency.to_numpy(), ttft.to_numpy(), count))

    def finish(self, day: dt.date) -> pl.DataFrame:
        """The mart rows of `day`, sorted by model; its values are dropped."""
        keys = sorted((key for key in self._values if key[0] == day), key=lambda key: (key[1] is None, key[1] or ""))
        rows = []
        for key in keys:
            chunks = self._values.pop(key)
            latency = np.concatenate([chunk[0] for chunk in chunks])
            ttft = np.concatenate([chunk[1] for chunk in chunks])
            requests = sum(chunk[2] for chunk in chunks)
            rows.append((*key, requests, *_quantiles(latency), len(ttft), *_quantiles(ttft)))
        return pl.DataFrame(rows, schema=LATENCY_DAILY_SCHEMA, orient="row")


def _quantiles(values: np.ndarray) -> list[float | None]:
    if len(values) == 0:
        return [None] * len(QUANTILES)
    return [float(v) for v in np.quantile(values, [q for _, q in QUANTILES], method="linear")]


def read_latency_daily(layout: DataLayout, since: dt.date, until: dt.date) -> pl.DataFrame:
    """Mart rows with `since <= date <= until`; no mart yet -> no rows."""
    path = layout.mart_file(MART)
    if not path.exists():
        return LATENCY_DAILY_SCHEMA.to_frame()
    return pl.scan_parquet(path, schema=LATENCY_DAILY_SCHEMA).filter(pl.col("date").is_between(since, until)).collect()
