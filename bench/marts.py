"""Mart refresh on a generated ledger: full rebuild, one-day incremental run, peak memory.

    .venv/bin/python -m bench.marts --rows 100000000 [--days 30] [--runs 2] [--dir /tmp/meterline-bench]

Writes `--rows` usage rows over `--days` UTC partitions, never holding the ledger in memory:
each past day as one compacted part file (row groups of 1M rows, in time order), the way the
collector's compaction leaves it. Then, `--runs` times, times `analytics.incremental.refresh` from nothing
(full rebuild), and again after one more day's partition lands as four uncompacted part files
(incremental; the rows where their time ranges overlap pay the duplicate check), and that
incremental once more from the same mart state after a first Polars query (`WARM_UP`). Each refresh
is a child process so its peak RSS (ru_maxrss) is its own; its time is the refresh alone, and
the whole child process's time (interpreter start and imports included) is printed beside it.
Request ids are `req_` + 32 characters, as long as the gateway's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from analytics.ledger import usage_schema
from meterline.layout import USAGE_TABLE, DataLayout

CHUNK = 1_000_000
OVERLAP_S = 120
"""Seconds by which an uncompacted part's time range runs into the next part's (requests in flight)."""
FIRST = dt.date(2026, 10, 1)
AGENTS = [f"agent-{i:03d}" for i in range(200)]
MODELS = ["gpt-4o-mini", "gpt-4o", "claude-sonnet-4", "o3", "gemini-2.5-pro", "llama-3.3-70b"]


def chunk_frame(
    rows: int, day: dt.date, seed: int, offset: int, span: tuple[float, float] = (0.0, 1.0)
) -> pl.DataFrame:
    """`rows` requests started within the `span` fraction of `day`, in time order (the order the
    collector receives and writes them)."""
    rng = np.random.default_rng(seed)
    start = dt.datetime.combine(day, dt.time(), dt.UTC)
    micros = np.sort(rng.integers(int(span[0] * 86_400_000_000), int(span[1] * 86_400_000_000), rows))
    agent = rng.integers(0, len(AGENTS), rows)
    tokens_in = rng.integers(10, 8_000, rows)
    tokens_out = rng.integers(1, 2_000, rows)
    frame = pl.DataFrame(
        {
            "request_id": "req_" + pl.int_range(offset, offset + rows, eager=True).cast(pl.String).str.zfill(32),
            "ts_start": pl.Series(micros).cast(pl.Duration("us")) + pl.Series([start]).dt.cast_time_unit("us"),
            "latency_ms": rng.gamma(2.0, 400.0, rows),
            "ttft_ms": np.where(rng.random(rows) < 0.5, rng.gamma(2.0, 80.0, rows), np.nan),
            "agent_id": pl.Series(AGENTS).gather(agent),
            "team": pl.Series([f"team-{i % 12}" for i in range(len(AGENTS))]).gather(agent),
            "project": pl.Series([f"project-{i % 30}" for i in range(len(AGENTS))]).gather(agent),
            "model_requested": pl.Series(MODELS).gather(rng.integers(0, len(MODELS), rows)),
            "input_tokens": tokens_in,
            "output_tokens": tokens_out,
            "cache_read_input_tokens": tokens_in // 3,
            "reasoning_output_tokens": tokens_out // 4,
            "cost_usd": (tokens_in * 2_500 + tokens_out * 10_000) / 1e9,
            "status": pl.Series(["ok", "error"]).gather((rng.random(rows) < 0.03).astype(np.int64)),
        }
    ).with_columns(
        pl.col("ts_start").alias("ts_end"),
        pl.col("model_requested").alias("model"),
        pl.lit("openai").alias("provider"),
        pl.lit(day).alias("date"),
        pl.col("ttft_ms").fill_nan(None),
    )
    return frame.select(
        [frame[c] if c in frame.columns else pl.lit(None, dtype).alias(c) for c, dtype in usage_schema().items()]
    ).cast(usage_schema())


def write_day(layout: DataLayout, day: dt.date, rows: int, seed: int, offset: int, files: int = 1) -> None:
    """`rows` rows dated `day` in `files` part files, each written in row groups of `CHUNK` rows.

    The collector writes records as requests finish, so a part's last requests started after
    the next part's first ones: each part but the last runs `OVERLAP_S` into the next one's time
    range (the rows there are the ones the duplicate check reads)."""
    folder = layout.partition_dir(USAGE_TABLE, day)
    folder.mkdir(parents=True, exist_ok=True)
    done = 0
    for index in range(files):
        end = rows * (index + 1) // files
        with pq.ParquetWriter(folder / layout.new_part_name(), _arrow_schema(), compression="zstd") as writer:
            while done < end:
                n = min(CHUNK, end - done)
                late = OVERLAP_S / 86_400 if done + n == end and index < files - 1 else 0.0
                span = (done / rows, min(1.0, (done + n) / rows + late))
                writer.write_table(chunk_frame(n, day, seed * 1000 + done // CHUNK, offset + done, span).to_arrow())
                done += n


def _arrow_schema() -> pa.Schema:
    return usage_schema().to_frame().to_arrow().schema


WARM_UP = "import polars as pl\npl.read_parquet(DataLayout.at(sys.argv[1]).mart_file('spend_daily'))\n"
"""Any one Polars query first: what a tick of `analytics serve` feels, since the ticks before it
have queried already (first-use costs such as starting Polars' thread pool are paid)."""


def measure(data_dir: Path, timezone: str, warm: bool = False) -> dict[str, float]:
    code = (
        "import json,resource,sys,time\n"
        "from analytics.incremental import refresh\nfrom meterline.layout import DataLayout\n"
        + (WARM_UP if warm else "")
        + "c=lambda u: u.ru_utime+u.ru_stime; u0=resource.getrusage(resource.RUSAGE_SELF)\n"
        "t=time.perf_counter(); rows=refresh(DataLayout.at(sys.argv[1]), sys.argv[2]); s=time.perf_counter()-t\n"
        "u=resource.getrusage(resource.RUSAGE_SELF)\n"
        "print(json.dumps({'seconds': s, 'peak_rss_mb': u.ru_maxrss/1024, 'cpu_seconds': c(u)-c(u0),"
        " 'rows': rows, 'load': open('/proc/loadavg').read().split()[0]}))"
    )
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code, str(data_dir), timezone], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout)
    # What a one-shot `meterline analytics run` feels, interpreter start and imports included; a
    # long-running `analytics serve` has paid those once and feels `seconds` per tick.
    result["process_seconds"] = time.perf_counter() - started
    return result


def _summary(result: dict[str, float]) -> str:
    return (
        f"{result['seconds']:.2f} s ({result['process_seconds']:.2f} s with interpreter start and imports),"
        f" peak RSS {result['peak_rss_mb']:.0f} MB,"
        f" CPU {result['cpu_seconds']:.1f} s, load average {result['load']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/meterline-bench-marts"))
    parser.add_argument("--timezone", default="Asia/Shanghai")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="reuse a ledger already generated in --dir")
    args = parser.parse_args()
    layout = DataLayout.at(args.dir)
    per_day = args.rows // args.days
    new_day = FIRST + dt.timedelta(days=args.days)
    if not args.keep:
        shutil.rmtree(args.dir, ignore_errors=True)
        started = time.perf_counter()
        for n in range(args.days):
            write_day(layout, FIRST + dt.timedelta(days=n), per_day, n, n * per_day)
        print(f"generated {per_day * args.days:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    for run in range(1, args.runs + 1):
        shutil.rmtree(layout.marts_dir, ignore_errors=True)
        shutil.rmtree(layout.partition_dir(USAGE_TABLE, new_day), ignore_errors=True)
        full = measure(args.dir, args.timezone)
        print(f"run {run}: full rebuild: {_summary(full)}", flush=True)
        before = args.dir / "marts-before-incremental"
        shutil.rmtree(before, ignore_errors=True)
        shutil.copytree(layout.marts_dir, before)
        write_day(layout, new_day, per_day, args.days, args.days * per_day, files=4)
        incremental = measure(args.dir, args.timezone)
        print(f"run {run}: one-day incremental: {_summary(incremental)}", flush=True)
        shutil.rmtree(layout.marts_dir)
        shutil.copytree(before, layout.marts_dir)
        warm = measure(args.dir, args.timezone, warm=True)
        print(f"run {run}: one-day incremental, Polars warm (as in serve): {_summary(warm)}", flush=True)
    print(f"self peak RSS (generator) {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
