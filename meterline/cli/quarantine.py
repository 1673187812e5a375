"""`meterline quarantine`: the usage records refused as invalid (meterline/quarantine.py), counted
by day, source and reason, or (`--json`) every row with its reasons."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from meterline.cli.commands import UsageError, data_dir_of, load

if TYPE_CHECKING:
    from meterline.storage import StorageTarget


def _targets(args: argparse.Namespace) -> list[StorageTarget]:
    """Where quarantine files are: the data dir (the collector's), and with an S3 ledger also
    the local dir (analytics sets stored rows aside there)."""
    from meterline.storage import open_target
    from meterline.storage.local import LocalTarget

    config, layout = load(args)
    data_dir = data_dir_of(args, config)
    targets: list[StorageTarget] = [LocalTarget(layout)]
    if data_dir.startswith("s3://"):
        storage = config.storage
        targets.append(open_target(layout, data_dir, storage.s3_endpoint_url, storage.s3_region))
    return targets


def read_quarantine(targets: list[StorageTarget], since: dt.date | None = None) -> list[dict[str, Any]]:
    """Every quarantined row (on or after `since`), oldest day first."""
    import pyarrow as pa  # the CLI's other verbs start without pyarrow
    import pyarrow.parquet as pq

    from meterline.quarantine import QUARANTINE_TABLE

    tables: list[pa.Table] = []
    for target in targets:
        for day, files in target.partitions(QUARANTINE_TABLE).items():
            if since is None or day >= since:
                tables.extend(pq.read_table(f.path, filesystem=target.filesystem) for f in files)
    if not tables:
        return []
    rows: list[dict[str, Any]] = pa.concat_tables(tables, promote_options="default").to_pylist()
    return sorted(rows, key=lambda r: (r["date"], r["quarantined_at"], r["request_id"] or ""))


def _plain(value: Any) -> Any:
    """A value JSON can carry: NaN and infinities as strings, dates and times in ISO form."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def quarantine(args: argparse.Namespace) -> int:
    try:
        since = dt.date.fromisoformat(args.since) if args.since else None
    except ValueError as exc:
        raise UsageError(f"--since: {exc}") from None
    rows = read_quarantine(_targets(args), since)
    if args.json:
        print(json.dumps([{k: _plain(v) for k, v in row.items()} for row in rows], indent=1, ensure_ascii=False))
        return 0
    if not rows:
        print("no quarantined records")
        return 0
    counts = Counter((row["date"], row["source"], reason) for row in rows for reason in row["reasons"] or ["?"])
    print(f"{'date':<10}  {'source':<9}  {'reason':<40}  records")
    for (day, source, reason), n in sorted(counts.items()):
        print(f"{day.isoformat():<10}  {source:<9}  {reason:<40}  {n}")
    print(f"{len(rows)} quarantined records (`meterline quarantine --json` lists them)")
    return 0


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], shared: object) -> None:
    parser = verbs.add_parser(
        "quarantine", help="usage records refused as invalid: counts by day, source and reason, or the rows"
    )
    shared(parser, top=False)  # type: ignore[operator]
    parser.add_argument("--since", default=None, help="first quarantine day shown, YYYY-MM-DD (default: all)")
    parser.add_argument("--json", action="store_true", help="every quarantined row with its reasons, as JSON")
    parser.set_defaults(run=quarantine)
