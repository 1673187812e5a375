"""`meterline collector compact`: one compaction and retention pass while no collector runs.

A running collector does the same every `storage.compact_interval_seconds`; this is for a
stopped one (or a backlog after changing `retention_days`). It takes the WAL directory's lock,
so it refuses to run beside a collector that might publish into a partition it is swapping.
"""

from __future__ import annotations

import os

from collector.compaction import CompactionReport, Compactor
from collector.settings import CollectorSettings
from collector.wal import lock_directory, pending_parquet_names
from meterline.layout import DataLayout
from meterline.storage import open_target


def compact_once(settings: CollectorSettings) -> CompactionReport:
    """Raises WalInUse when a collector runs on the same data."""
    layout = DataLayout.at(settings.data_dir)
    wal_dir = layout.root / "wal"
    lock = lock_directory(wal_dir)
    try:
        target = open_target(layout, settings.storage_url, settings.s3_endpoint_url, settings.s3_region)
        target.recover()
        # Segments a stopped collector left unpublished will be republished by name on its next
        # start; their files must keep those names.
        return Compactor(target, settings.compaction, lambda: pending_parquet_names(wal_dir)).run()
    finally:
        os.close(lock)
