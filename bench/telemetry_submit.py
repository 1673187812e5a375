"""CPU the request path and the spool writer spend per usage record: `TelemetryExporter.submit`
(encode + the spool write) and the writer task's group commits, in-process, without a
collector (the sender's interval is an hour, so it never posts).

20,000 records are submitted in slices of 200 with 5 ms pauses (a busy gateway's pace, so the
50 ms group commits each take a few thousand); process CPU time (all threads) / 20,000.
To compare two versions, run this file with each tree first on the path:

    PYTHONPATH=<tree> .venv/bin/python bench/telemetry_submit.py [--label NAME]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.collector_ingest import _usage_record
from gateway.telemetry.exporter import TelemetryExporter
from gateway.telemetry.spool import Spool

N = 20_000


async def _drive(directory: Path) -> float:
    records = [_usage_record(f"req_{i:032x}", i) for i in range(N)]
    exporter = TelemetryExporter(
        "http://127.0.0.1:9", {"service.name": "bench"}, spool=Spool(directory, 1024**3), interval_s=3600, flush_ms=50
    )
    await exporter.start()
    cpu = time.process_time()
    for start in range(0, N, 200):
        for record in records[start : start + 200]:
            exporter.submit(record, None)  # type: ignore[arg-type]
        await asyncio.sleep(0.005)
    await asyncio.sleep(0.2)  # the last group commit
    return time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="this tree")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        cpu = asyncio.run(_drive(Path(tmp)))
    print(f"{args.label}: {cpu / N * 1e6:.1f} us CPU per usage record (submit + spool writes + fsyncs)")


if __name__ == "__main__":
    main()
