"""What the last mart run saw: every ledger partition's files, its time range, the local
days it held, and whether its rows needed de-duplicating.

Kept at `<data_dir>/marts/_state.json` (with an S3 ledger, under `storage.local_dir`). A
partition whose file set (names, sizes, mtimes, and locally inodes) differs from the recorded
one has changed, even when the rows are the same ones (a compaction rewriting its files, a
retention job deleting it): the days it held before and holds now are the days to rebuild.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from meterline.layout import DataLayout, atomic_target

STATE_VERSION = 2
"""Bump when a mart's definition changes: a state of another version forces a full rebuild."""

Files = dict[str, list[int]]
"""Part file name -> [size in bytes, mtime in ns, inode] on local disk (a file replaced under the
same name by an atomic rename gets a new inode even if its size and mtime happen to match);
[size, LastModified in ns] on S3 (analytics/ledger_source.py)."""


@dataclass
class PartitionState:
    files: Files
    days: list[str]
    """Local days (ISO) of the partition's rows in the state's time zone."""
    lo_us: int | None = None
    hi_us: int | None = None
    """The earliest and latest `ts_start` (epoch microseconds); None for a partition without rows."""
    unique: bool = True
    """No request_id appears twice (False mid-compaction, when merged and small parts coexist)."""


@dataclass
class MartState:
    timezone: str
    version: int = STATE_VERSION
    partitions: dict[str, PartitionState] = field(default_factory=dict)


def state_path(layout: DataLayout) -> Path:
    return layout.marts_dir / "_state.json"


def list_partitions(layout: DataLayout) -> dict[str, Files]:
    """Every `date=...` folder of the ledger holding finished parts, with its files' identities."""
    found: dict[str, Files] = {}
    if not layout.usage_dir.is_dir():
        return found
    for folder in sorted(layout.usage_dir.glob("date=*")):
        files: Files = {}
        for part in sorted(folder.glob("*.parquet")):
            try:
                stat = part.stat()
            except FileNotFoundError:  # removed by a compaction between glob and stat
                continue
            files[part.name] = [stat.st_size, stat.st_mtime_ns, stat.st_ino]
        if files:
            found[folder.name] = files
    return found


def load_state(layout: DataLayout) -> MartState | None:
    """The recorded state, or None when there is none or it cannot be read (-> full rebuild)."""
    try:
        raw = json.loads(state_path(layout).read_text(encoding="utf-8"))
        return MartState(
            timezone=raw["timezone"],
            version=raw["version"],
            partitions={
                name: PartitionState(p["files"], p["days"], p["lo_us"], p["hi_us"], p["unique"])
                for name, p in raw["partitions"].items()
            },
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save_state(layout: DataLayout, state: MartState) -> None:
    final = state_path(layout)
    final.parent.mkdir(parents=True, exist_ok=True)
    temp = atomic_target(final)
    document = {
        "version": state.version,
        "timezone": state.timezone,
        "partitions": {n: dataclasses.asdict(p) for n, p in sorted(state.partitions.items())},
    }
    temp.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    os.replace(temp, final)
