"""Run the gateway under uvicorn; SIGTERM/SIGINT drain requests and flush telemetry, then exit 0."""

from __future__ import annotations

import logging

from gateway.app import create_app
from meterline.config import MeterlineConfig
from meterline.serving import run_until_stopped

log = logging.getLogger(__name__)


def serve(config: MeterlineConfig, host: str = "127.0.0.1", port: int = 4000) -> None:
    log.info("gateway: OpenAI-compatible API on http://%s:%d/v1", host, port)
    run_until_stopped(create_app(config), host, port)
