"""The ingest path, independent of transport: decoded batch -> dedup -> WAL -> Parquet -> catalog.

Both OTLP/HTTP (app.py) and OTLP/gRPC call `ingest_spans` / `ingest_usage`; when one returns,
every accepted row is fdatasync'd in the write-ahead log. A background task publishes the WAL
as Parquet (to the storage target) by rows, bytes or age, then trims it; every
`compaction.interval_s` it also compacts small files and applies retention, holding the publish
lock so no file appears in a partition while it is being swapped. Exactly once: a usage row
whose request_id is in the Parquet files or anywhere in the WAL is dropped; both survive restarts.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from collector.catalog import CatalogBusy, ensure_catalog
from collector.compaction import CompactionPolicy, CompactionReport, Compactor
from collector.decode import DecodedBatch
from collector.dedup import UsageDeduplicator
from collector.errors import Overloaded, StorageUnavailable
from collector.metrics import CollectorMetrics
from collector.validation import RecordValidator, Verdict
from collector.wal import WriteAheadLog, parquet_name, pending_parquet_names
from collector.writer import ParquetWriter, build_table
from meterline.layout import SPANS_TABLE, USAGE_TABLE, DataLayout
from meterline.log_limit import LogLimiter
from meterline.quarantine import (
    QUARANTINE_TABLE,
    UNREADABLE,
    quarantine_table,
    unreadable_table,
    write_quarantine,
)
from meterline.storage.base import StorageTarget
from meterline.storage.local import LocalTarget

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    written: int
    duplicates: int
    rejected: int
    message: str


@dataclass(frozen=True, slots=True)
class FlushPolicy:
    """When the WAL's active segment becomes Parquet: whichever limit is reached first."""

    max_age_s: float = 1.0
    max_rows: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    max_backlog_bytes: int = 512 * 1024 * 1024
    """Acknowledged-but-unpublished bytes beyond which exports get 503 + Retry-After."""


class Pipeline:
    def __init__(
        self,
        layout: DataLayout,
        writer: ParquetWriter,
        dedup: UsageDeduplicator,
        wal: WriteAheadLog,
        policy: FlushPolicy,
        compaction: CompactionPolicy,
        validator: RecordValidator | None = None,
        metrics: CollectorMetrics | None = None,
    ) -> None:
        self.layout = layout
        """Local root: the WAL, and (for a local target) the Parquet and the DuckDB catalog."""
        self.target = writer.target
        self.wal = wal
        self._writer = writer
        self._dedup = dedup
        self._policy = policy
        self._compaction = compaction
        self._validator = validator
        """Checks each usage record before it is acknowledged; the failing ones go to the quarantine."""
        self.metrics = metrics or CollectorMetrics()
        self._compactor = Compactor(writer.target, compaction, lambda: pending_parquet_names(wal.directory))
        self._last_compaction = time.monotonic()
        self._inflight: dict[asyncio.Future[None], set[str]] = {}
        """Usage request ids being committed to the WAL, per commit (set operations in C, not a
        Python loop per id)."""
        self._live_tables: frozenset[str] = frozenset()
        self._catalog_lock = asyncio.Lock()
        self._publish_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._log = LogLimiter(log)

    @classmethod
    async def start(
        cls,
        layout: DataLayout,
        policy: FlushPolicy | None = None,
        target: StorageTarget | None = None,
        compaction: CompactionPolicy | None = None,
        *,
        validator: RecordValidator | None = None,
        metrics: CollectorMetrics | None = None,
    ) -> Pipeline:
        """Finish an interrupted compaction, load the written request ids, replay the WAL into
        Parquet, bring the catalog up to date. `target` defaults to Parquet under `layout`."""
        layout.root.mkdir(parents=True, exist_ok=True)
        target = target or LocalTarget(layout)
        await asyncio.to_thread(target.recover)
        dedup = await asyncio.to_thread(UsageDeduplicator.load, target)
        wal = WriteAheadLog(layout.root / "wal")
        replayed = await asyncio.to_thread(wal.open)
        for table, data in replayed:
            if table == USAGE_TABLE:
                dedup.mark_ids(data.column("request_id").to_pylist())
        pipeline = cls(
            layout,
            ParquetWriter(target),
            dedup,
            wal,
            policy or FlushPolicy(),
            compaction or CompactionPolicy(),
            validator,
            metrics,
        )
        if replayed:
            log.info("collector: replaying %d WAL batches into Parquet", len(replayed))
        await pipeline.publish()
        await pipeline.refresh_catalog()
        log.info("collector: %d usage request ids already in the ledger", len(dedup))
        pipeline._task = asyncio.create_task(pipeline._run(), name="wal-publisher")
        return pipeline

    async def close(self) -> None:
        """Publish everything acknowledged, then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
        try:
            await self.publish()
        finally:
            self.wal.close()

    def _admit(self) -> None:
        backlog = self.wal.backlog_bytes
        if backlog > self._policy.max_backlog_bytes:
            raise Overloaded(f"write-ahead log backlog of {backlog} bytes is over its limit; retry later")

    async def ingest_spans(self, batch: DecodedBatch) -> IngestResult:
        self._admit()
        data = batch.table if batch.table is not None else build_table(SPANS_TABLE, batch.rows)
        if data.num_rows:
            await self.wal.append(SPANS_TABLE, data)
            self._after_append()
        return IngestResult(data.num_rows, 0, batch.rejected, batch.message)

    async def ingest_usage(self, batch: DecodedBatch) -> IngestResult:
        self._admit()
        data = batch.table if batch.table is not None else build_table(USAGE_TABLE, batch.rows)
        ids: list[str] = (
            batch.request_ids
            if batch.table is not None and batch.request_ids is not None
            else data.column("request_id").to_pylist()
        )
        if self._validator is not None:
            verdict = batch.verdict
            if verdict is None and data.num_rows:
                verdict = self._split(self._validator, data)
            if (verdict is not None and verdict.bad.num_rows) or batch.undecodable:
                await self._quarantine(verdict, batch)
            if verdict is not None and verdict.bad.num_rows:
                data = verdict.good
                ids = data.column("request_id").to_pylist()
        distinct = set(ids)
        # A request carrying an id that another request is committing waits for that commit, so
        # it neither duplicates the row nor drops it while the commit might still fail.
        while waits := [done for done, pending in self._inflight.items() if not distinct.isdisjoint(pending)]:
            await asyncio.wait(waits)
        keep = self._dedup.fresh_mask(ids, distinct)
        if all(keep):
            fresh = distinct  # every id new and none repeated: the usual case
        else:
            fresh = {i for i, k in zip(ids, keep, strict=True) if k}
            data = data.filter(pa.array(keep, type=pa.bool_()))
        if fresh:
            committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._inflight[committed] = fresh
            try:
                await self.wal.append(USAGE_TABLE, data)
                self._dedup.mark_ids(fresh)
            finally:
                del self._inflight[committed]
                committed.set_result(None)
            self._after_append()
        return IngestResult(len(fresh), len(ids) - len(fresh), batch.rejected, batch.message)

    def check_usage(self, batch: DecodedBatch) -> None:
        """Check a decoded usage batch's records now (blocking: the export's worker thread calls
        it right after decoding, so the event loop never runs the checks); `ingest_usage` uses
        the verdict. Raises like `ingest_usage` for a fault in the validator."""
        if self._validator is not None and batch.table is not None and batch.table.num_rows:
            batch.verdict = self._split(self._validator, batch.table)

    @staticmethod
    def _split(validator: RecordValidator, data: pa.Table) -> Verdict:
        """The validator's verdict; a fault in it (a bug, never the sender's) is a 503, so the
        batch is retried and nothing is billed or set aside unchecked."""
        try:
            return validator.split(data)
        except Exception as exc:
            log.exception("collector: validating a usage batch failed; the sender will retry it")
            raise StorageUnavailable(f"could not validate the usage records ({type(exc).__name__})") from exc

    async def _quarantine(self, verdict: Verdict | None, batch: DecodedBatch) -> None:
        """Publish the refused records with their reasons (durable before the batch is answered):
        rows that broke a rule, counted here in the batch's partial success, and records the
        decoder could not turn into rows (already counted), kept as their protobuf bytes. A failed
        write fails the export (503), so the sender retries and nothing it was told about is lost."""
        at = dt.datetime.now(dt.UTC)
        parts: list[pa.Table] = []
        codes: list[list[str]] = []
        details: list[str] = []
        if verdict is not None and verdict.bad.num_rows:
            codes = [[p.code for p in problems] for problems in verdict.problems]
            details = ["; ".join(str(p) for p in problems) for problems in verdict.problems]
            parts.append(quarantine_table(verdict.bad, codes, details, "collector", at))
        if batch.undecodable:
            parts.append(unreadable_table(batch.undecodable, "collector", at))
        rows = pa.concat_tables(parts)
        try:
            await asyncio.to_thread(write_quarantine, self.target, rows)
        except (OSError, pa.ArrowException) as exc:
            raise StorageUnavailable(f"could not write the quarantine: {exc}") from exc
        if verdict is not None and verdict.bad.num_rows:
            for request_id, detail in zip(verdict.bad.column("request_id").to_pylist(), details, strict=True):
                batch.reject(f"usage record {request_id!r:.80} quarantined", detail)
        rules = [code for row in codes for code in row] + [UNREADABLE] * len(batch.undecodable)
        self.metrics.count_quarantined(rows.num_rows, rules)
        if QUARANTINE_TABLE not in self._live_tables:
            await self.refresh_catalog()  # its view was an empty stand-in until this first file
        said = details[:3] + [reason for reason, _ in batch.undecodable[:3]]
        log.warning("collector: %d usage record(s) quarantined: %s", rows.num_rows, "; ".join(said[:3]))

    def _after_append(self) -> None:
        if self.wal.active_rows >= self._policy.max_rows or self.wal.active_bytes >= self._policy.max_bytes:
            self._wake.set()

    async def _run(self) -> None:
        """The publisher and the compaction timer: no fault ends this loop (each is logged at
        most once per interval and counted in meterline_collector_loop_errors_total)."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._policy.max_age_s)
            self._wake.clear()
            if self._stopping:
                return
            try:
                await self.publish()
            except Exception:  # noqa: BLE001 - the WAL keeps the data; the next round retries
                self._loop_error("publish", "collector: publishing the WAL as Parquet failed; will retry")
                await asyncio.sleep(self._policy.max_age_s)
            if time.monotonic() - self._last_compaction >= self._compaction.interval_s:
                self._last_compaction = time.monotonic()
                try:
                    await self.compact()
                except Exception:  # noqa: BLE001 - inputs stay in place until a merge is verified
                    self._loop_error("compaction", "collector: compaction failed; will retry next interval")

    def _loop_error(self, loop: str, message: str, *args: object) -> None:
        self.metrics.loop_errors.labels(loop).inc()
        self._log.log(logging.ERROR, loop, message, *args, exc_info=True)

    async def publish(self) -> None:
        """Close the active WAL segment and turn every closed segment into Parquet, oldest first."""
        async with self._publish_lock:
            await asyncio.to_thread(self.wal.rotate)
            if not self.wal.closed_segments:
                return
            written = await asyncio.to_thread(self._publish_closed)
        # The views read their table's folder by glob, so a new file needs no catalog write;
        # only a table's first file does (its view was an empty stand-in until then).
        if not written <= self._live_tables:
            await self.refresh_catalog()

    def _publish_closed(self) -> set[str]:
        """Publish every closed segment; returns the tables written to. A storage fault (OSError,
        which pyarrow's I/O and S3 errors are, or the writer's StorageUnavailable wrapping one)
        stops the round: the segment stays and the next round retries it. Any other fault is the
        segment's own (it cannot be read or written as a table): it is set aside
        (`WriteAheadLog.set_aside`) and the later segments go on."""
        written: set[str] = set()
        for segment in list(self.wal.closed_segments):
            by_table: dict[str, list[pa.Table]] = {}
            name = parquet_name(segment)
            try:
                for table, data in self.wal.read_segment(segment):
                    by_table.setdefault(table, []).append(data)
                for table, parts in by_table.items():
                    self._writer.write_named_sync(table, pa.concat_tables(parts), name)
            except (OSError, StorageUnavailable, MemoryError):
                raise
            except Exception as exc:  # noqa: BLE001 - one segment's fault stays with that segment
                aside = self.wal.set_aside(segment)
                self.metrics.segments_set_aside.inc()
                self._loop_error(
                    "publish", "collector: WAL segment %s cannot be published (%s: %s); set aside as %s",
                    segment, type(exc).__name__, str(exc)[:200], aside,
                )  # fmt: skip
                continue
            written.update(by_table)
            self.wal.remove(segment)
            del by_table
            # mimalloc keeps freed pages for reuse; a published segment's are not needed soon.
            pa.default_memory_pool().release_unused()
        return written

    async def compact(self) -> CompactionReport:
        """Merge small files and apply retention now (publishing waits meanwhile)."""
        async with self._publish_lock:
            report = await asyncio.to_thread(self._compactor.run)
        if report.partitions_failed:
            self.metrics.loop_errors.labels("compaction").inc(len(report.partitions_failed))
        await self.refresh_catalog()
        return report

    async def refresh_catalog(self) -> None:
        """Point the views at the Parquet files; a busy catalog is retried after the next publish,
        never failed back to the sender, whose data is already durable. An S3 target has no
        catalog file: readers build their views per connection (`catalog.connect`)."""
        if not isinstance(self.target, LocalTarget):
            return
        async with self._catalog_lock:
            try:
                self._live_tables = await asyncio.to_thread(ensure_catalog, self.layout)
            except (CatalogBusy, duckdb.Error, OSError) as exc:
                self._log.log(logging.WARNING, "catalog-busy", "collector: catalog not refreshed, will retry: %s", exc)
            except Exception:  # noqa: BLE001 - the data is durable; readers see it at the next refresh
                self._loop_error("catalog", "collector: catalog refresh failed; will retry")
