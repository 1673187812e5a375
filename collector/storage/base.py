"""Re-exports `meterline.storage.base` (the storage-target Protocol), where it now lives."""

from meterline.storage.base import (
    COMPACTED_PREFIX,
    PartFile,
    StorageTarget,
    WriteMerged,
    parse_partition,
    partition_name,
)

__all__ = ["COMPACTED_PREFIX", "PartFile", "StorageTarget", "WriteMerged", "parse_partition", "partition_name"]
