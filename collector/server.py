"""Run the collector under uvicorn until SIGTERM or SIGINT, then drain and exit cleanly."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Generator

import uvicorn

from collector.app import create_app
from collector.settings import CollectorSettings
from meterline.config import MeterlineConfig

log = logging.getLogger(__name__)


class _DrainingServer(uvicorn.Server):
    """uvicorn drains in-flight requests on SIGTERM/SIGINT, then re-raises the signal so the
    process dies by it (exit status 128+n). A supervisor asked us to stop and we did: exit 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        original = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


def serve(config: MeterlineConfig, data_dir: str, host: str = "127.0.0.1", port: int = 4318) -> None:
    """Serve OTLP/HTTP on host:port, writing under `data_dir`; returns after a graceful stop."""
    settings = CollectorSettings.from_config(config, data_dir)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log.info("collector: OTLP/HTTP on http://%s:%d, data lands in %s", host, port, settings.data_dir)
    server = _DrainingServer(
        uvicorn.Config(create_app(settings), host=host, port=port, lifespan="on", log_config=None, access_log=False)
    )
    server.run()
    if not server.started:
        # Startup failed (port taken, lifespan error): uvicorn has logged why; do not exit 0.
        raise SystemExit(1)
