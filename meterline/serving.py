"""Run an ASGI app under uvicorn until SIGTERM or SIGINT, drain, and exit 0.

Stock uvicorn drains in-flight requests on a signal, then re-raises the signal so the process
dies by it (exit status 128+n). A supervisor asked us to stop and we did, so we exit 0; and a
server that never started (port taken, lifespan error) exits 1.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Generator
from typing import Any

import uvicorn


class DrainingServer(uvicorn.Server):
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


def run_until_stopped(
    app: Any,
    host: str,
    port: int,
    graceful_timeout_s: int = 15,
    *,
    proxy_headers: bool = True,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> None:
    """`proxy_headers`: uvicorn's X-Forwarded-* rewrite of the client address, an ASGI layer on
    every request; a server that never reads the client address can turn it off.
    `ssl_certfile`/`ssl_keyfile`: serve HTTPS with that PEM certificate and key."""
    server = DrainingServer(
        uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=graceful_timeout_s,
            proxy_headers=proxy_headers,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
    )
    server.run()
    if not server.started:
        raise SystemExit(1)
