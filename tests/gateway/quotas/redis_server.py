"""A redis-server child process of the test's own, on a free port, without persistence, that a
test may kill, restart or flush: never the machine's shared Redis, which other tests use."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port


class RedisServer:
    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._directory = directory
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Start it and return once it answers PING."""
        persistence_off = ["--save", "", "--appendonly", "no", "--dir", str(self._directory)]
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "no"]
        self._process = subprocess.Popen(
            command + persistence_off, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        self.wait_for_ping()

    def wait_for_ping(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        client = redis.Redis(port=self.port, socket_timeout=1, socket_connect_timeout=1)
        try:
            while True:
                try:
                    if client.ping():
                        return
                except redis.RedisError:
                    if time.monotonic() > deadline:
                        raise
                time.sleep(0.02)
        finally:
            client.close()

    def stop(self) -> None:
        """SIGTERM, as an orchestrator restarting it would; without persistence its data is gone."""
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=30)
            self._process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@contextmanager
def redis_server(directory: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed; CI requires it")
        pytest.skip("redis-server is not installed")
    server = RedisServer(directory)
    server.start()
    try:
        yield server
    finally:
        server.stop()
