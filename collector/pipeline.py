"""The ingest path, independent of transport: decoded batch -> dedup -> Parquet -> catalog.

Both OTLP/HTTP (app.py) and, later, OTLP/gRPC call `ingest_spans` / `ingest_usage`; when one
returns, every accepted row is in a published, fsync'd Parquet file.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import duckdb

from collector.catalog import CatalogBusy, ensure_catalog
from collector.decode import DecodedBatch
from collector.dedup import UsageDeduplicator
from collector.writer import ParquetWriter
from meterline.layout import SPANS_TABLE, USAGE_TABLE, DataLayout

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    written: int
    duplicates: int
    rejected: int
    message: str


class Pipeline:
    def __init__(self, layout: DataLayout, writer: ParquetWriter, dedup: UsageDeduplicator) -> None:
        self.layout = layout
        self._writer = writer
        self._dedup = dedup
        self._live_tables: frozenset[str] = frozenset()
        self._catalog_lock = asyncio.Lock()

    @classmethod
    async def start(cls, layout: DataLayout) -> Pipeline:
        """Load the written request ids and bring the catalog up to date (blocking work in threads)."""
        layout.root.mkdir(parents=True, exist_ok=True)
        dedup = await asyncio.to_thread(UsageDeduplicator.load, layout)
        pipeline = cls(layout, ParquetWriter(layout), dedup)
        await pipeline.refresh_catalog()
        log.info("collector: %d usage request ids already in the ledger", len(dedup))
        return pipeline

    async def ingest_spans(self, batch: DecodedBatch) -> IngestResult:
        await self._writer.write(SPANS_TABLE, batch.rows)
        await self._after_write(SPANS_TABLE, bool(batch.rows))
        return IngestResult(len(batch.rows), 0, batch.rejected, batch.message)

    async def ingest_usage(self, batch: DecodedBatch) -> IngestResult:
        async with self._dedup.lock:
            fresh = self._dedup.fresh(batch.rows)
            await self._writer.write(USAGE_TABLE, fresh, on_published=self._dedup.mark)
        await self._after_write(USAGE_TABLE, bool(fresh))
        return IngestResult(len(fresh), len(batch.rows) - len(fresh), batch.rejected, batch.message)

    async def _after_write(self, table: str, wrote: bool) -> None:
        if wrote and table not in self._live_tables:
            await self.refresh_catalog()

    async def refresh_catalog(self) -> None:
        """Point the views at the Parquet files; a busy catalog is retried after the next write,
        never failed back to the sender, whose data is already durable."""
        async with self._catalog_lock:
            try:
                self._live_tables = await asyncio.to_thread(ensure_catalog, self.layout)
            except (CatalogBusy, duckdb.Error, OSError) as exc:
                log.warning("collector: catalog not refreshed, will retry: %s", exc)
