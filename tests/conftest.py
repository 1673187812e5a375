"""Shared test set-up: isolated environment, service URLs, free ports.

PostgreSQL and Redis URLs come from the environment (defaulting to the local services).
Where one is absent its tests skip with the reason, except under CI (CI=true), where an absent
service fails the run so nothing silently goes untested. The same holds for the native
extensions (`@pytest.mark.native("collector._otlp_native", ...)`): a build that failed skips
their tests locally and fails them under CI.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis.asyncio
from hypothesis import settings

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Under CI the generated cases are the same on every run, so a landing is judged on the code,
# not on which rare case a random seed happened to reach; locally they stay random and explore.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

POSTGRES_URL = os.environ.get("METERLINE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("METERLINE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def require_service(name: str, host: str, port: int) -> None:
    """Skip (or fail under CI) when a service the test needs is not listening."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return
    except OSError as exc:
        message = f"{name} is not reachable at {host}:{port} ({exc})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires it")
        pytest.skip(message)


NATIVE_EXTENSIONS = ("collector._otlp_native", "collector._otlp_spans", "gateway.telemetry._otlp_encode")
"""Every native extension setup.py builds (optional, so a failed build still installs)."""


def require_native(*modules: str) -> None:
    """Skip (or fail under CI) when a native extension the test needs cannot be imported."""
    missing = []
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"{module} ({exc})")
    if missing:
        message = f"native extension not built: {', '.join(missing)}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}; CI requires it (a failed build must not skip its tests)")
        pytest.skip(message)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "native(*modules): needs these native extensions (tests/conftest.py)")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers("native"):
        require_native(*marker.args)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Meterline's own overrides from the developer's shell never leak into a test, and a test
    that runs on the embedded defaults (`storage.data_dir: ./data`) writes its key store and
    spool under a scratch directory, never into the checkout."""
    for name in list(os.environ):
        if name.startswith("METERLINE_") and not name.startswith("METERLINE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
    yield


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix no other test uses (skips, or fails under CI, without Redis); every key
    under it is deleted afterwards."""
    parts = urlsplit(REDIS_URL)
    require_service("Redis", parts.hostname or "127.0.0.1", parts.port or 6379)
    unique = f"meterline:test:{uuid.uuid4().hex}:"
    yield unique

    async def cleanup() -> None:
        client = redis.asyncio.Redis.from_url(REDIS_URL)
        try:
            keys = [key async for key in client.scan_iter(match=unique + "*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()

    asyncio.run(cleanup())
