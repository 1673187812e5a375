"""The collector's storage targets now live in `meterline.storage`, shared with analytics (which
reads the ledger through the same target); these names are re-exported for the collector."""

from meterline.storage import LocalTarget, S3Location, S3Target, StorageTarget, open_target, s3_filesystem

__all__ = ["LocalTarget", "S3Location", "S3Target", "StorageTarget", "open_target", "s3_filesystem"]
