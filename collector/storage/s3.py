"""Re-exports `meterline.storage.s3` (the S3 target), where it now lives."""

from meterline.storage.s3 import S3Location, S3Target, s3_filesystem

__all__ = ["S3Location", "S3Target", "s3_filesystem"]
