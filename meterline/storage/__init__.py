"""Where published Parquet lives: a local directory or an S3 prefix, behind one small Protocol
(`base.StorageTarget`), one module per backend, chosen by the data dir's form. The collector
writes through a target; analytics reads the ledger through the same one."""

from __future__ import annotations

from meterline.layout import DataLayout
from meterline.storage.base import StorageTarget
from meterline.storage.local import LocalTarget
from meterline.storage.s3 import S3Location, S3Target, open_s3, s3_filesystem

__all__ = ["LocalTarget", "S3Location", "S3Target", "StorageTarget", "open_s3", "open_target", "s3_filesystem"]


def open_target(
    local: DataLayout, url: str | None = None, endpoint_url: str | None = None, region: str | None = None
) -> StorageTarget:
    """`url` (`s3://bucket/prefix`) when given, else the local data dir."""
    if url is None:
        return LocalTarget(local)
    return open_s3(S3Location.parse(url), endpoint_url, region)
