"""Small-file compaction and retention over a storage target.

The publisher writes a file per WAL segment per day (about one a second under steady load), so
a day partition collects thousands of small files that make every scan slow. Compaction merges
a partition's small files into one; retention removes partitions older than `retention_days`.
Both go through the target, which keeps each step atomic for readers (see storage/).

Exactly once is preserved: a merged file holds exactly the rows of its inputs (the row count is
checked before it becomes visible), and a file whose WAL segment is still on disk is never
merged, because republishing that segment after a crash overwrites the file by name and would
otherwise duplicate its rows.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from collector.catalog import TABLE_SCHEMAS
from meterline.storage.base import COMPACTED_PREFIX, PartFile, StorageTarget

log = logging.getLogger(__name__)


class CompactionError(Exception):
    """A merged file did not hold exactly its inputs' rows; nothing was replaced."""


@dataclass(frozen=True, slots=True)
class CompactionPolicy:
    interval_s: float = 300.0
    """How often the running collector compacts and applies retention."""
    min_files: int = 10
    """A partition is compacted once it has at least this many small files."""
    small_file_bytes: int = 64 * 1024 * 1024
    """Files at least this big are left as they are."""
    retention_days: int = 400
    """Partitions whose day is more than this many days before today (UTC) are removed."""


@dataclass(slots=True)
class CompactionReport:
    partitions_compacted: int = 0
    files_merged: int = 0
    rows_merged: int = 0
    partitions_dropped: list[str] = field(default_factory=list)
    partitions_failed: list[str] = field(default_factory=list)
    """Partitions whose merge or removal failed this pass (logged; their files stay as they were)."""


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class Compactor:
    def __init__(
        self,
        target: StorageTarget,
        policy: CompactionPolicy,
        protected: Callable[[], set[str]] = set,
        compression: str = "zstd",
        today: Callable[[], dt.date] = _today,
    ) -> None:
        self._target = target
        self._policy = policy
        self._protected = protected
        """Names of files that must not be merged (their WAL segment may be republished)."""
        self._compression = compression
        self._today = today

    def run(self) -> CompactionReport:
        """One pass over every table (blocking). The caller keeps publishers out meanwhile."""
        report = CompactionReport()
        cutoff = self._today() - dt.timedelta(days=self._policy.retention_days)
        for table in TABLE_SCHEMAS:
            for day, files in self._target.partitions(table).items():
                # One partition's fault (a file that is not the Parquet it should be) stays with
                # it: its files stay as they were and the pass goes on to the next partition. A
                # storage fault (OSError) ends the pass; the next interval tries again.
                try:
                    if day < cutoff:
                        self._target.drop(table, day)
                        report.partitions_dropped.append(f"{table}/{day.isoformat()}")
                        log.info(
                            "collector: removed %s partition %s (older than %d days)",
                            table,
                            day,
                            self._policy.retention_days,
                        )
                        continue
                    self._compact(table, day, files, report)
                except (OSError, MemoryError):
                    raise
                except Exception as exc:  # noqa: BLE001
                    report.partitions_failed.append(f"{table}/{day.isoformat()}")
                    log.error(
                        "collector: compaction of %s partition %s failed (%s: %s); its files are kept",
                        table, day, type(exc).__name__, str(exc)[:200],
                    )  # fmt: skip
        return report

    def _compact(self, table: str, day: dt.date, files: list[PartFile], report: CompactionReport) -> None:
        protected = self._protected()
        small = [f for f in files if f.size < self._policy.small_file_bytes and f.name not in protected]
        if len(small) < self._policy.min_files:
            return
        schema = TABLE_SCHEMAS[table]()
        # A file written under an older schema stays as it is: casting could drop its columns.
        current = schema.remove_metadata()
        inputs = [f for f in small if _schema_of(f, self._target.filesystem).equals(current)]
        if len(inputs) < 2:
            return
        merged = f"{COMPACTED_PREFIX}{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:8]}.parquet"
        rows = sum(_rows_of(f, self._target.filesystem) for f in inputs)

        def write(path: str) -> None:
            _merge(self._target.filesystem, inputs, path, schema, self._compression, rows)

        self._target.compact(table, day, inputs, merged, write)
        report.partitions_compacted += 1
        report.files_merged += len(inputs)
        report.rows_merged += rows
        log.info("collector: compacted %d %s files of %s (%d rows) into %s", len(inputs), table, day, rows, merged)


def _schema_of(part: PartFile, filesystem: pafs.FileSystem) -> pa.Schema:
    return pq.read_schema(part.path, filesystem=filesystem).remove_metadata()


def _rows_of(part: PartFile, filesystem: pafs.FileSystem) -> int:
    rows: int = pq.read_metadata(part.path, filesystem=filesystem).num_rows
    return rows


def _merge(
    filesystem: pafs.FileSystem, inputs: list[PartFile], path: str, schema: pa.Schema, compression: str, rows: int
) -> None:
    """Write the inputs' rows to `path` (not yet visible to readers) and check the count."""
    # One input at a time, so memory holds one small file, not the whole partition.
    with pq.ParquetWriter(path, schema, filesystem=filesystem, compression=compression) as out:
        for part in inputs:
            out.write_table(pq.read_table(part.path, filesystem=filesystem).replace_schema_metadata(schema.metadata))
    written: int = pq.read_metadata(path, filesystem=filesystem).num_rows
    if written != rows:
        raise CompactionError(f"merged file {path} holds {written} rows, its inputs {rows}; nothing replaced")
