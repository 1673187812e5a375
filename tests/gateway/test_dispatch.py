"""gateway/dispatch.py: the model-call routes called straight from ASGI, with Starlette's error
handling, and Starlette's whole stack for everything else."""

from __future__ import annotations

import logging

import pytest
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.dispatch import GatewayApp
from gateway.errors import GatewayError, InvalidApiKey
from gateway.telemetry.sink import InMemorySink


class SyncCommitSink(InMemorySink):
    @property
    def sync_commit(self) -> bool:
        return True


class MarkStarlettePath:
    """Stands for the user middleware (DurableResponses): marks responses that went through it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def marked(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message["headers"], (b"x-path", b"starlette")]
            await send(message)

        await self.app(scope, receive, marked)


async def ok(request: Request) -> Response:
    return JSONResponse({"body": (await request.body()).decode(), "app": request.app is APP_MARK[0]})


async def refused(request: Request) -> Response:
    raise InvalidApiKey("Invalid API key.")


async def broken(request: Request) -> Response:
    raise KeyError("a bug")


APP_MARK: list[object] = []
DIRECT = {"/v1/ok": ok, "/v1/refused": refused, "/v1/broken": broken}


def app(sink: InMemorySink) -> GatewayApp:
    async def gateway_error(request: Request, exc: Exception) -> Response:
        raise AssertionError("the direct path renders GatewayErrors itself")

    built = GatewayApp(
        direct=DIRECT,
        sink=sink,
        routes=[Route(path, endpoint, methods=["POST"]) for path, endpoint in DIRECT.items()],
        middleware=[Middleware(MarkStarlettePath)],
        exception_handlers={GatewayError: gateway_error} if not sink.sync_commit else {},
    )
    APP_MARK[:] = [built]
    return built


def test_a_model_call_skips_starlettes_stack_and_sees_the_app() -> None:
    with TestClient(app(InMemorySink())) as client:
        response = client.post("/v1/ok", content=b"hello")
    assert response.status_code == 200
    assert response.json() == {"body": "hello", "app": True}
    assert "x-path" not in response.headers


def test_with_sync_commit_every_request_takes_starlettes_stack() -> None:
    with TestClient(app(SyncCommitSink())) as client:
        response = client.post("/v1/ok", content=b"hello")
    assert response.json() == {"body": "hello", "app": True}
    assert response.headers["x-path"] == "starlette"


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/v1/ok", 405), ("POST", "/v1/ok/", 307)])
def test_other_methods_and_paths_take_starlettes_stack(method: str, path: str, status: int) -> None:
    with TestClient(app(InMemorySink()), follow_redirects=False) as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert response.headers["x-path"] == "starlette"


def test_a_gateway_error_is_openai_error_json() -> None:
    with TestClient(app(InMemorySink())) as client:
        response = client.post("/v1/refused")
    assert response.status_code == 401
    assert response.json() == {
        "error": {
            "message": "Invalid API key.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }


def test_an_unexpected_error_is_logged_answered_502_and_reraised(caplog: pytest.LogCaptureFixture) -> None:
    client = TestClient(app(InMemorySink()), raise_server_exceptions=False)
    with client, caplog.at_level(logging.ERROR, logger="gateway.dispatch"):
        response = client.post("/v1/broken")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "gateway_error"
    assert "a bug" not in response.text
    [logged] = [r for r in caplog.records if r.name == "gateway.dispatch"]
    assert logged.getMessage() == "unexpected error on POST /v1/broken"
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], KeyError)
    with TestClient(app(InMemorySink())) as client, pytest.raises(KeyError):
        client.post("/v1/broken")
