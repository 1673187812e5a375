"""Where every stage's data lands under the data directory.

    <data_dir>/usage/date=YYYY-MM-DD/part-*.parquet    the ledger (collector writes)
    <data_dir>/spans/date=YYYY-MM-DD/part-*.parquet    spans (collector writes)
    <data_dir>/marts/spend_daily/data.parquet          spend mart (analytics writes)
    <data_dir>/meterline.duckdb                        DuckDB catalog: views `usage`, `spans`

Writers write to a dot-prefixed temp name in the same folder and rename it into place, so
readers (which glob `*.parquet`) only ever see finished files.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

USAGE_TABLE = "usage"
SPANS_TABLE = "spans"
PARTITION_KEY = "date"


@dataclass(frozen=True)
class DataLayout:
    root: Path

    @classmethod
    def at(cls, data_dir: str | os.PathLike[str]) -> DataLayout:
        return cls(Path(data_dir).expanduser().resolve())

    def table_dir(self, table: str) -> Path:
        return self.root / table

    def partition_dir(self, table: str, day: dt.date) -> Path:
        return self.table_dir(table) / f"{PARTITION_KEY}={day.isoformat()}"

    def table_glob(self, table: str) -> str:
        return str(self.table_dir(table) / f"{PARTITION_KEY}=*" / "*.parquet")

    def new_part_name(self) -> str:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        return f"part-{stamp}-{uuid.uuid4().hex[:8]}.parquet"

    @property
    def usage_dir(self) -> Path:
        return self.table_dir(USAGE_TABLE)

    @property
    def spans_dir(self) -> Path:
        return self.table_dir(SPANS_TABLE)

    @property
    def marts_dir(self) -> Path:
        return self.root / "marts"

    def mart_file(self, mart: str) -> Path:
        return self.marts_dir / mart / "data.parquet"

    @property
    def catalog_path(self) -> Path:
        return self.root / "meterline.duckdb"


def atomic_target(final_path: Path) -> Path:
    """The temp path to write before `os.replace(temp, final_path)`; hidden from `*.parquet` globs."""
    return final_path.with_name(f".{final_path.name}.{uuid.uuid4().hex[:8]}.tmp")


def publish(temp_path: Path, final_path: Path) -> None:
    """fsync the finished temp file, rename it into place and fsync the folder."""
    with open(temp_path, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp_path, final_path)
    fsync_dir(final_path.parent)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable."""
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
