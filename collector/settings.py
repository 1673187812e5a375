"""The collector's validated settings, derived from the one config file plus the data dir."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from meterline.config import MeterlineConfig

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    """Root of the Parquet tables and the DuckDB catalog (see `meterline.layout`)."""
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    """Largest OTLP request body accepted, compressed or not; larger ones get 413."""
    grpc_host: str = "127.0.0.1"
    """Address the OTLP/gRPC receiver binds."""
    grpc_port: int = Field(default=0, ge=0, le=65535)
    """Port of the OTLP/gRPC receiver (4317 from the CLI); 0 runs no gRPC receiver."""
    grpc_required: bool = True
    """Off: a gRPC port that cannot be bound is a warning (HTTP keeps serving), not a failed start."""

    @classmethod
    def from_config(cls, config: MeterlineConfig, data_dir: str | os.PathLike[str] | None = None) -> CollectorSettings:
        """Settings for `config`; `data_dir` (the `--data-dir` flag) wins over `storage.data_dir`."""
        raw = os.fspath(data_dir) if data_dir is not None else config.storage.data_dir
        if raw.startswith("s3://"):
            # Path() would silently fold "s3://b/p" into the local path "s3:/b/p".
            raise ValueError(
                f"data_dir {raw!r}: the collector writes to a local directory only (S3 is not supported yet)"
            )
        return cls(data_dir=Path(raw).expanduser().resolve())
