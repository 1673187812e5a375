"""Run the gateway under uvicorn; SIGTERM/SIGINT drain requests and flush telemetry."""

from __future__ import annotations

import uvicorn

from gateway.app import create_app
from meterline.config import MeterlineConfig


def serve(config: MeterlineConfig, host: str = "127.0.0.1", port: int = 4000) -> None:
    uvicorn.run(
        create_app(config),
        host=host,
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=10,
        lifespan="on",
    )
