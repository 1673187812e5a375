"""gateway/server.py: the start-up objects leave the collector's reach once the app is ready."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from gateway.server import FreezeAfterStartup


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the test session collects as usual


def test_objects_alive_at_startup_complete_are_frozen_and_requests_pass_through(unfrozen: None) -> None:
    seen: list[tuple[str, int]] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await receive()
            seen.append(("before startup.complete", gc.get_freeze_count()))
            await send({"type": "lifespan.startup.complete"})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})

    async def run() -> list[Message]:
        sent: list[Message] = []
        inbox = [{"type": "lifespan.startup"}]

        async def receive() -> Message:
            return inbox.pop(0)

        async def send(message: Message) -> None:
            seen.append((message["type"], gc.get_freeze_count()))
            sent.append(message)

        wrapped = FreezeAfterStartup(app)
        await wrapped({"type": "lifespan"}, receive, send)
        await wrapped({"type": "http"}, receive, send)
        return sent

    sent = asyncio.run(run())

    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "http.response.start"]
    assert seen[0] == ("before startup.complete", 0)
    assert seen[1][0] == "lifespan.startup.complete" and seen[1][1] > 10_000


def test_serve_runs_the_frozen_app_without_uvicorns_proxy_headers_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    import gateway.server as server

    calls: list[tuple[object, str, int, dict[str, object]]] = []
    built = object()
    monkeypatch.setattr(server, "create_app", lambda config: built)
    monkeypatch.setattr(server, "run_until_stopped", lambda app, host, port, **kw: calls.append((app, host, port, kw)))
    server.serve(object(), "127.0.0.1", 4123)  # type: ignore[arg-type]
    [(app, host, port, options)] = calls
    assert isinstance(app, FreezeAfterStartup) and app.app is built
    assert (host, port, options) == ("127.0.0.1", 4123, {"proxy_headers": False})
