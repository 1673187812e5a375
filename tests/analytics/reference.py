"""The reference computation of the marts: DuckDB SQL straight over the raw Parquet parts."""

from __future__ import annotations

from typing import Any

import duckdb

from meterline.layout import USAGE_TABLE, DataLayout

_ROWS = """
SELECT *, coalesce(model, model_requested) AS mdl, timezone($tz, ts_start)::DATE AS day
FROM (SELECT DISTINCT ON (request_id) * FROM read_parquet($glob, hive_partitioning = false))
"""

_MEASURES = """
count(*)::BIGINT, count(*) FILTER (WHERE status <> 'ok')::BIGINT,
sum(input_tokens)::BIGINT, sum(output_tokens)::BIGINT,
sum(cache_read_input_tokens)::BIGINT, sum(reasoning_output_tokens)::BIGINT,
sum(cost_usd::DECIMAL(38, 12))::DOUBLE, sum(cost_saved_usd::DECIMAL(38, 12))::DOUBLE
"""

SPEND_DAILY = f"SELECT day, agent_id, team, project, mdl, provider, {_MEASURES} FROM ({_ROWS}) GROUP BY ALL"
SPEND_MONTHLY = (
    f"SELECT date_trunc('month', day)::DATE, agent_id, team, project, mdl, provider, {_MEASURES} "
    f"FROM ({_ROWS}) GROUP BY ALL"
)
LATENCY_DAILY = f"""
SELECT day, mdl, count(*)::BIGINT,
       quantile_cont(latency_ms, 0.5), quantile_cont(latency_ms, 0.95), quantile_cont(latency_ms, 0.99),
       count(ttft_ms)::BIGINT,
       quantile_cont(ttft_ms, 0.5), quantile_cont(ttft_ms, 0.95), quantile_cont(ttft_ms, 0.99)
FROM ({_ROWS}) GROUP BY ALL
"""


def reference(layout: DataLayout, sql: str, timezone: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Rows keyed by their group columns (all but the measures)."""
    rows = duckdb.connect().execute(sql, {"glob": layout.table_glob(USAGE_TABLE), "tz": timezone}).fetchall()
    width = 2 if sql is LATENCY_DAILY else 6
    return {row[:width]: row[width:] for row in rows}
