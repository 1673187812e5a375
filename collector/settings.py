"""The collector's validated settings, derived from the one config file plus the data dir."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from collector.compaction import CompactionPolicy
from meterline.config import CollectorConfig, ConfigError, IngestTokenConfig, MeterlineConfig, SecretsConfig
from meterline.record_limits import RecordLimits

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024


class CollectorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    data_dir: Path
    """Local root: the write-ahead log, and unless `storage_url` is set the Parquet tables and
    the DuckDB catalog (see `meterline.layout`)."""
    storage_url: str | None = None
    """`s3://bucket/prefix` where the Parquet tables land instead of under `data_dir`."""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, gt=0)
    """Largest OTLP request body accepted, compressed or not; larger ones get 413."""
    grpc_host: str = "127.0.0.1"
    """Address the OTLP/gRPC receiver binds."""
    grpc_port: int = Field(default=0, ge=0, le=65535)
    """Port of the OTLP/gRPC receiver (4317 from the CLI); 0 runs no gRPC receiver."""
    grpc_required: bool = True
    """Off: a gRPC port that cannot be bound is a warning (HTTP keeps serving), not a failed start."""
    compaction: CompactionPolicy = CompactionPolicy()
    """Small-file compaction and retention (from `storage.compact_*` and `storage.retention_days`)."""
    validation: RecordLimits = RecordLimits()
    """What a usage record may hold (`collector.validation`); the others go to the quarantine."""
    ingest_tokens: tuple[IngestTokenConfig, ...] = ()
    """Principals by bearer token (`collector.ingest_tokens`); empty: no authentication."""
    allow_unauthenticated: bool = False
    """`collector.allow_unauthenticated`: without tokens, a non-loopback bind is allowed."""
    tls_cert_file: Path | None = None
    """`collector.tls.cert_file`: TLS on both listeners when set (with `tls_key_file`)."""
    tls_key_file: Path | None = None
    secrets: SecretsConfig = SecretsConfig()
    """How the tokens' secret references are read and refreshed (`secrets`)."""

    @model_validator(mode="after")
    def _tls_pair(self) -> CollectorSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert_file is not None else "http"

    @classmethod
    def from_config(
        cls, config: MeterlineConfig, data_dir: str | os.PathLike[str] | None = None, source: str = "meterline.yaml"
    ) -> CollectorSettings:
        """Settings for `config`; `data_dir` (the `--data-dir` flag) wins over `storage.data_dir`.
        A TLS file that is not there is a ConfigError naming its field in `source`."""
        storage = config.storage
        raw = os.fspath(data_dir) if data_dir is not None else storage.data_dir
        compaction = CompactionPolicy(
            interval_s=storage.compact_interval_seconds,
            min_files=storage.compact_min_files,
            small_file_bytes=storage.compact_small_file_bytes,
            retention_days=storage.retention_days,
        )
        common = {
            "s3_endpoint_url": storage.s3_endpoint_url,
            "s3_region": storage.s3_region,
            "compaction": compaction,
            **_access(config.collector, source),
            "secrets": config.secrets,
        }
        if raw.startswith("s3://"):
            # Path() would silently fold "s3://b/p" into the local path "s3:/b/p".
            local = Path(storage.local_dir).expanduser().resolve()
            return cls.model_validate({"data_dir": local, "storage_url": raw, **common})
        return cls.model_validate({"data_dir": Path(raw).expanduser().resolve(), **common})


def _access(collector: CollectorConfig, source: str) -> dict[str, Any]:
    """The `collector:` section as settings fields; TLS files must exist."""
    fields: dict[str, Any] = {
        "ingest_tokens": tuple(collector.ingest_tokens),
        "allow_unauthenticated": collector.allow_unauthenticated,
        "validation": collector.validation,
    }
    if collector.tls is not None:
        for name in ("cert_file", "key_file"):
            path = Path(getattr(collector.tls, name)).expanduser().resolve()
            if not path.is_file():
                raise ConfigError(source, f"collector.tls.{name}", f"no file at {path}")
            fields[f"tls_{name}"] = path
    return fields
