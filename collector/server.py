"""Run the collector under uvicorn until SIGTERM or SIGINT, then drain and exit cleanly."""

from __future__ import annotations

import logging

from collector.app import create_app
from collector.settings import CollectorSettings
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
) -> None:
    """Serve OTLP/HTTP on host:port (and OTLP/gRPC on host:grpc_port unless it is 0), writing
    under `data_dir`; returns after a graceful stop. With `grpc_required` off, a gRPC port that
    is taken leaves the collector on HTTP only, with a warning."""
    settings = CollectorSettings.from_config(config, data_dir).model_copy(
        update={"grpc_host": host, "grpc_port": grpc_port, "grpc_required": grpc_required}
    )
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    where = settings.storage_url or settings.data_dir
    log.info("collector: OTLP/HTTP on http://%s:%d, data lands in %s", host, port, where)
    run_until_stopped(create_app(settings), host, port)
