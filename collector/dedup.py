"""Exactly-once usage rows: a request_id already in the ledger (or earlier in the batch) is dropped.

Senders retry until acknowledged, so the same usage record can arrive more than once (a lost
response, a gateway restart replaying its spool). The set of written ids is loaded from the
ledger at startup and grows as files are published; it holds every id ever written, which is
fine for the single-node skeleton but will need a time window once the ledger is large.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from meterline.layout import PARTITION_KEY, USAGE_TABLE, DataLayout

Row = dict[str, Any]


class UsageDeduplicator:
    def __init__(self, seen: Iterable[str] = ()) -> None:
        self._seen: set[str] = set(seen)
        self.lock = asyncio.Lock()
        """Held from `fresh` until the batch is published, so two concurrent requests carrying
        the same id cannot both pass the check before either has written."""

    @classmethod
    def load(cls, layout: DataLayout) -> UsageDeduplicator:
        """Every request_id in the published usage files (blocking; call it off the event loop)."""
        seen: set[str] = set()
        for path in _published_files(layout):
            column = pq.read_table(path, columns=["request_id"]).column("request_id")
            seen.update(v for v in column.to_pylist() if v is not None)
        return cls(seen)

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, request_id: object) -> bool:
        return request_id in self._seen

    def fresh(self, rows: list[Row]) -> list[Row]:
        """Rows whose request_id is neither written nor repeated earlier in `rows`."""
        out: list[Row] = []
        batch: set[str] = set()
        for row in rows:
            request_id = row["request_id"]
            if request_id in self._seen or request_id in batch:
                continue
            batch.add(request_id)
            out.append(row)
        return out

    def mark_ids(self, request_ids: Iterable[str | None]) -> None:
        self._seen.update(i for i in request_ids if i is not None)

    def mark(self, rows: list[Row]) -> None:
        """Record rows as written; call only once their file is durable."""
        self._seen.update(row["request_id"] for row in rows)


def _published_files(layout: DataLayout) -> list[Path]:
    # The same files `layout.table_glob` names: temp files start with "." and never match.
    return sorted(layout.table_dir(USAGE_TABLE).glob(f"{PARTITION_KEY}=*/*.parquet"))
