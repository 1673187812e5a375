"""Mart refresh over an S3 ledger (moto in server mode over HTTP) against the same ledger on disk.

    .venv/bin/python -m bench.marts_s3 [--rows 2000000] [--days 10] [--dir /tmp/meterline-bench-s3]

Generates the ledger as `bench.marts` does (one compacted part per past UTC day), uploads it to
a moto server started in this process, then times, each in a child process: a full rebuild from
the local copy, a full rebuild from S3, and after one more day lands (four uncompacted parts, in
both places) the one-day incremental run of each. moto is a Python server on the same machine,
so the S3 figures bound the read path's overhead from above; the moto process's own CPU is
reported apart from the refresh's. Peak RSS is the child's VmHWM: `ru_maxrss` would carry over
the parent's peak (moto holds the whole bucket in memory) across fork and exec.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pyarrow.fs as pafs
from moto.server import ThreadedMotoServer

from bench.marts import FIRST, write_day
from meterline.layout import USAGE_TABLE, DataLayout
from meterline.storage import s3_filesystem

BUCKET = "bench-ledger"
REGION = "us-east-1"

_CHILD = """
import json, resource, sys, time
from analytics.incremental import refresh
from analytics.ledger_source import open_ledger
from meterline.config import StorageConfig
data_dir, local_dir, endpoint, timezone = sys.argv[1:5]
layout, ledger = open_ledger(StorageConfig(data_dir=data_dir, local_dir=local_dir, s3_endpoint_url=endpoint or None))
c = lambda u: u.ru_utime + u.ru_stime
u0 = resource.getrusage(resource.RUSAGE_SELF)
t = time.perf_counter(); rows = refresh(layout, timezone, ledger=ledger); s = time.perf_counter() - t
u = resource.getrusage(resource.RUSAGE_SELF)
hwm = next(line for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(json.dumps({"seconds": s, "peak_rss_mb": int(hwm.split()[1]) / 1024, "cpu_seconds": c(u) - c(u0), "rows": rows,
                  "load": open("/proc/loadavg").read().split()[0]}))
"""


def measure(data_dir: str, marts_dir: Path, endpoint: str, timezone: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, data_dir, str(marts_dir), endpoint, timezone],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout)
    return result


def upload(layout: DataLayout, filesystem: pafs.FileSystem, day: dt.date) -> None:
    folder = layout.partition_dir(USAGE_TABLE, day)
    for part in sorted(folder.glob("*.parquet")):
        key = f"{BUCKET}/ledger/{USAGE_TABLE}/{folder.name}/{part.name}"
        with filesystem.open_output_stream(key) as out, open(part, "rb") as source:
            shutil.copyfileobj(source, out, 8 << 20)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _summary(result: dict[str, float]) -> str:
    return (
        f"{result['seconds']:.2f} s, peak RSS {result['peak_rss_mb']:.0f} MB,"
        f" CPU {result['cpu_seconds']:.1f} s, load average {result['load']}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=Path("/tmp/meterline-bench-s3"))
    parser.add_argument("--timezone", default="Asia/Shanghai")
    args = parser.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    layout = DataLayout.at(args.dir / "local")
    per_day = args.rows // args.days
    for n in range(args.days):
        write_day(layout, FIRST + dt.timedelta(days=n), per_day, n, n * per_day)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per S3 request otherwise
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_REGION=REGION)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, region_name=REGION).create_bucket(Bucket=BUCKET)
        filesystem = s3_filesystem(endpoint, REGION)
        for n in range(args.days):
            upload(layout, filesystem, FIRST + dt.timedelta(days=n))
        print(f"{per_day * args.days:,} rows over {args.days} days, on disk and in moto", flush=True)
        s3_url = f"s3://{BUCKET}/ledger"
        runs = {"local": (str(layout.root), layout.root), "s3": (s3_url, args.dir / "s3-marts")}
        for name, (data_dir, marts) in runs.items():
            before = _cpu()
            result = measure(data_dir, marts, endpoint, args.timezone)
            print(f"{name}: full rebuild: {_summary(result)}; moto CPU {_cpu() - before:.1f} s", flush=True)
        new_day = FIRST + dt.timedelta(days=args.days)
        write_day(layout, new_day, per_day, args.days, args.days * per_day, files=4)
        upload(layout, filesystem, new_day)
        for name, (data_dir, marts) in runs.items():
            before = _cpu()
            result = measure(data_dir, marts, endpoint, args.timezone)
            print(f"{name}: one-day incremental: {_summary(result)}; moto CPU {_cpu() - before:.1f} s", flush=True)
    finally:
        server.stop()
        shutil.rmtree(args.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
