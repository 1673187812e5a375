"""Exactly-once usage rows: a request_id already in the ledger (or earlier in the batch) is dropped.

Senders retry until acknowledged, so the same usage record can arrive more than once (a lost
response, a gateway restart replaying its spool). The set of written ids is loaded from the
ledger at startup (compacted files hold the same ids, so compaction changes nothing here) and
grows as files are published; it holds every id ever written, which is fine for one node but
will need a time window once the ledger is large.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, cast

import pyarrow.parquet as pq

from meterline.layout import USAGE_TABLE
from meterline.storage.base import StorageTarget

Row = dict[str, Any]


class UsageDeduplicator:
    def __init__(self, seen: Iterable[str] = ()) -> None:
        self._seen: set[str] = set(seen)
        self.lock = asyncio.Lock()
        """Held from `fresh` until the batch is published, so two concurrent requests carrying
        the same id cannot both pass the check before either has written."""

    @classmethod
    def load(cls, target: StorageTarget) -> UsageDeduplicator:
        """Every request_id in the published usage files (blocking; call it off the event loop)."""
        seen: set[str] = set()
        for files in target.partitions(USAGE_TABLE).values():
            for part in files:
                column = pq.read_table(part.path, columns=["request_id"], filesystem=target.filesystem)
                seen.update(v for v in column.column("request_id").to_pylist() if v is not None)
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

    def fresh_mask(self, request_ids: list[str], distinct: set[str] | None = None) -> list[bool]:
        """For each id: neither written nor repeated earlier in the list. `distinct`, when the
        caller has it, is `set(request_ids)`."""
        seen = self._seen
        if distinct is None:
            distinct = set(request_ids)
        if len(distinct) == len(request_ids) and seen.isdisjoint(distinct):
            return [True] * len(request_ids)  # the usual case, answered by set operations in C
        batch: set[str] = set()
        keep: list[bool] = []
        for request_id in request_ids:
            fresh = request_id not in seen and request_id not in batch
            if fresh:
                batch.add(request_id)
            keep.append(fresh)
        return keep

    def mark_ids(self, request_ids: Iterable[str | None]) -> None:
        seen = cast("set[str | None]", self._seen)
        seen.update(request_ids)  # whole, in C; a None (a row without an id) is taken out after
        seen.discard(None)

    def mark(self, rows: list[Row]) -> None:
        """Record rows as written; call only once their file is durable."""
        self._seen.update(row["request_id"] for row in rows)
