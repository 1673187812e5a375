"""Run the collector under uvicorn until SIGTERM or SIGINT, then drain and exit cleanly."""

from __future__ import annotations

import logging

from collector.app import create_app
from collector.auth import IngestAuth
from collector.settings import CollectorSettings
from meterline.bind import is_loopback, require_loopback_or_allowed
from meterline.config import MeterlineConfig
from meterline.serving import run_until_stopped

log = logging.getLogger(__name__)


def serve(
    config: MeterlineConfig,
    data_dir: str,
    host: str = "127.0.0.1",
    port: int = 4318,
    grpc_port: int = 0,
    grpc_required: bool = True,
    source: str = "meterline.yaml",
) -> None:
    """Serve OTLP/HTTP on host:port (and OTLP/gRPC on host:grpc_port unless it is 0), writing
    under `data_dir`; returns after a graceful stop. With `grpc_required` off, a gRPC port that
    is taken leaves the collector on HTTP only, with a warning. Without `collector.ingest_tokens`
    a non-loopback `host` is refused (ConfigError naming `collector.allow_unauthenticated`, from
    `source`) unless that setting allows it; a token that cannot be used is refused likewise."""
    settings = CollectorSettings.from_config(config, data_dir, source).model_copy(
        update={"grpc_host": host, "grpc_port": grpc_port, "grpc_required": grpc_required}
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not settings.ingest_tokens:
        require_loopback_or_allowed(
            host,
            server="collector",
            risk="may write usage records into the ledger",
            remedy="configure collector.ingest_tokens",
            setting="collector.allow_unauthenticated",
            allowed=settings.allow_unauthenticated,
            source=source,
        )
    auth = IngestAuth.open(settings, source)
    if auth.required and settings.tls_cert_file is None and not is_loopback(host):
        log.warning("collector: bearer tokens arrive in clear text on %s; set collector.tls", host)
    where = settings.storage_url or settings.data_dir
    scheme = settings.scheme
    access = f"{len(settings.ingest_tokens)} principal(s) by bearer token" if auth.required else "no authentication"
    log.info("collector: OTLP/HTTP on %s://%s:%d, %s, data lands in %s", scheme, host, port, access, where)
    run_until_stopped(
        create_app(settings, auth),
        host,
        port,
        ssl_certfile=str(settings.tls_cert_file) if settings.tls_cert_file else None,
        ssl_keyfile=str(settings.tls_key_file) if settings.tls_key_file else None,
    )
