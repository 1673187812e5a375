"""A local OpenAI: the wire format of api.openai.com/v1, scripted by a `MockBehaviour`.

Endpoints: POST /v1/chat/completions, /v1/completions, /v1/embeddings, /v1/responses (each
with its stream format where OpenAI has one) and GET /v1/models. Usage follows the token rule
in `gateway.testing.behaviour`. A request must carry `Authorization: Bearer <key>` with a key
in `behaviour.accepted_keys`, else 401 with OpenAI's `invalid_api_key` body; then the next
scripted failure, if any, answers instead of the endpoint.

In fast mode (benchmarks) a byte-identical request is answered from a cache of the encoded
response, so the mock costs a fraction of what the server under test does.

    python -m gateway.testing.mock_openai --port 9000 [--key sk-mock] [--fast]
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.testing import openai_bodies
from gateway.testing.behaviour import MockBehaviour, ScriptedFailure
from gateway.testing.wire import EventStream, dumps, json_response, received, run_cli

Builder = Callable[[dict[str, Any], MockBehaviour], "bytes | list[bytes]"]
Endpoint = Callable[[Request], Awaitable[Response]]

# status -> (type, code, message) of OpenAI's error body when a scripted failure gives none.
ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("permission_error", None, "You are not allowed to access this resource."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    408: ("timeout", None, "Request timed out."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests. Please try again later."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", "service_unavailable", "The engine is currently overloaded, please try again later."),
}
_FAST_CACHE_SIZE = 256


def error_body(status: int, message: str | None = None, param: str | None = None) -> dict[str, Any]:
    fallback = ("server_error" if status >= 500 else "invalid_request_error", None, f"HTTP {status}")
    kind, code, default = ERROR_DEFAULTS.get(status, fallback)
    return {"error": {"message": message or default, "type": kind, "param": param, "code": code}}


def _failure_response(failure: ScriptedFailure, headers: dict[str, str]) -> Response:
    body = failure.body if failure.body is not None else error_body(failure.status, failure.message)
    headers = {**headers, **failure.headers}
    if failure.retry_after is not None:
        headers["retry-after"] = failure.retry_after
    return json_response(dumps(body), failure.status, headers)


def create_mock_openai(behaviour: MockBehaviour) -> Starlette:
    request_ids = count(1)
    fast_cache: dict[tuple[str, bytes], bytes | list[bytes]] = {}

    def refused(request: Request, headers: dict[str, str]) -> Response | None:
        authorization = request.headers.get("authorization", "")
        key = authorization[7:] if authorization[:7].lower() == "bearer " else ""
        if key not in behaviour.accepted_keys:
            shown = f"{key[:3]}...{key[-4:]}" if len(key) > 8 else "(none)"
            message = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
            return json_response(dumps(error_body(401, message)), 401, headers)
        if request.method == "POST" and (failure := behaviour.take_failure()) is not None:
            return _failure_response(failure, headers)
        return None

    def endpoint(build: Builder, required: tuple[str, ...]) -> Endpoint:
        async def handle(request: Request) -> Response:
            raw, body = await received(request, behaviour)
            headers = {"x-request-id": f"req_mock_{next(request_ids)}"}
            if (denied := refused(request, headers)) is not None:
                return denied
            key = (request.url.path, raw)
            answer = fast_cache.get(key) if behaviour.fast else None
            if answer is None:
                if body is None:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = None
                if not isinstance(body, dict):
                    unparsable = error_body(400, "We could not parse the JSON body of your request.")
                    return json_response(dumps(unparsable), 400, headers)
                for name in required:
                    if name not in body:
                        message = f"you must provide a {name} parameter"
                        return json_response(dumps(error_body(400, message, name)), 400, headers)
                answer = build(body, behaviour)
                if behaviour.fast and len(fast_cache) < _FAST_CACHE_SIZE:
                    fast_cache[key] = answer
            if isinstance(answer, bytes):
                return json_response(answer, 200, headers)
            return EventStream(answer, behaviour, headers)

        return handle

    async def list_models(request: Request) -> Response:
        await received(request, behaviour)
        headers = {"x-request-id": f"req_mock_{next(request_ids)}"}
        if (denied := refused(request, headers)) is not None:
            return denied
        data = [{"id": m, "object": "model", "created": 1_700_000_000, "owned_by": "mock"} for m in behaviour.models]
        return json_response(dumps({"object": "list", "data": data}), 200, headers)

    return Starlette(
        routes=[
            Route(
                "/v1/chat/completions", endpoint(openai_bodies.chat_completion, ("model", "messages")), methods=["POST"]
            ),
            Route("/v1/completions", endpoint(openai_bodies.completion, ("model", "prompt")), methods=["POST"]),
            Route("/v1/embeddings", endpoint(openai_bodies.embeddings, ("model", "input")), methods=["POST"]),
            Route("/v1/responses", endpoint(openai_bodies.response, ("model", "input")), methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    run_cli("A local OpenAI-compatible mock provider.", create_mock_openai, "sk-mock", argv)


if __name__ == "__main__":
    main()
