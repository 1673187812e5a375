"""A local Anthropic: the Messages API wire format (POST /v1/messages), scripted by a `MockBehaviour`.

POST /v1/messages/count_tokens answers `{"input_tokens": N}`, N the prompt's tokens by that rule.
A request needs `x-api-key` (or `Authorization: Bearer`) with a key in `behaviour.accepted_keys`
(else 401 `authentication_error`) and an `anthropic-version` header (else 400). Usage follows
the token rule in `gateway.testing.behaviour`, split the way Anthropic splits it: of the prompt's
tokens, `cache_read_input_tokens` = behaviour.cached_tokens and `cache_creation_input_tokens` =
behaviour.cache_creation_tokens, and `input_tokens` is the rest; `output_tokens` is the words
of the reply (or of a tool call's input JSON).

    python -m gateway.testing.mock_anthropic --port 9001 [--key sk-ant-mock]
"""

from __future__ import annotations

import json
from itertools import count
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.testing.behaviour import MockBehaviour, ScriptedFailure, prompt_tokens, words
from gateway.testing.wire import EventStream, dumps, json_response, pieces, received, run_cli

# status -> (error type, message) of Anthropic's error body when a scripted failure gives none.
ERROR_DEFAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "An unexpected error has occurred internal to Anthropic's systems."),
    504: ("timeout_error", "Request timed out."),
    529: ("overloaded_error", "Overloaded"),
}
_ids = count(1)


def error_body(status: int, message: str | None = None, request_id: str | None = None) -> dict[str, Any]:
    kind, default = ERROR_DEFAULTS.get(status, ("api_error" if status >= 500 else "invalid_request_error", ""))
    return {"type": "error", "error": {"type": kind, "message": message or default}, "request_id": request_id}


def _event(payload: dict[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def _tool_to_call(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    if not tools or choice.get("type") == "none":
        return None
    if choice.get("type") == "tool" and isinstance(choice.get("name"), str):
        return str(choice["name"])
    return str(tools[0].get("name") or "tool")


def usage(body: dict[str, Any], behaviour: MockBehaviour, output_tokens: int) -> dict[str, Any]:
    total = prompt_tokens(body.get("messages") or [], system=body.get("system"))
    cache_read = min(behaviour.cached_tokens, total)
    cache_creation = min(behaviour.cache_creation_tokens, total - cache_read)
    return {
        "input_tokens": total - cache_read - cache_creation,
        "cache_creation_input_tokens": cache_creation,
        "cache_read_input_tokens": cache_read,
        "output_tokens": output_tokens,
        "service_tier": "standard",
    }


def message(body: dict[str, Any], behaviour: MockBehaviour) -> bytes | list[bytes]:
    tool = _tool_to_call(body)
    text = behaviour.tool_arguments if tool else behaviour.reply
    block: dict[str, Any] = {"type": "text", "text": text}
    if tool:
        block = {"type": "tool_use", "id": f"toolu_mock_{next(_ids)}", "name": tool, "input": json.loads(text)}
    result: dict[str, Any] = {
        "id": f"msg_mock_{next(_ids)}",
        "type": "message",
        "role": "assistant",
        "model": body["model"],
        "content": [block],
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": usage(body, behaviour, words(text)),
    }
    if not body.get("stream"):
        if behaviour.omit_usage:
            del result["usage"]
        return dumps(result)
    started = {**result, "content": [], "stop_reason": None, "usage": {**result["usage"], "output_tokens": 1}}
    if behaviour.omit_usage:
        del started["usage"]
    if tool:
        opening = {**block, "input": {}}
        deltas = [{"type": "input_json_delta", "partial_json": piece} for piece in pieces(text)]
    else:
        opening = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": piece} for piece in pieces(text)]
    closing: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": result["stop_reason"]}}
    closing["delta"]["stop_sequence"] = None
    if not behaviour.omit_usage:
        closing["usage"] = {"output_tokens": words(text)}
    return [
        _event({"type": "message_start", "message": started}),
        _event({"type": "content_block_start", "index": 0, "content_block": opening}),
        _event({"type": "ping"}),
        *(_event({"type": "content_block_delta", "index": 0, "delta": delta}) for delta in deltas),
        _event({"type": "content_block_stop", "index": 0}),
        _event(closing),
        _event({"type": "message_stop"}),
    ]


def _failure_response(failure: ScriptedFailure, headers: dict[str, str]) -> Response:
    body = failure.body
    if body is None:
        body = error_body(failure.status, failure.message, headers["request-id"])
    headers = {**headers, **failure.headers}
    if failure.retry_after is not None:
        headers["retry-after"] = failure.retry_after
    return json_response(dumps(body), failure.status, headers)


def create_mock_anthropic(behaviour: MockBehaviour) -> Starlette:
    request_ids = count(1)

    def refused(request: Request, headers: dict[str, str]) -> Response | None:
        request_id = headers["request-id"]
        authorization = request.headers.get("authorization", "")
        key = request.headers.get("x-api-key") or (authorization[7:] if authorization[:7].lower() == "bearer " else "")
        if key not in behaviour.accepted_keys:
            return json_response(dumps(error_body(401, None, request_id)), 401, headers)
        if "anthropic-version" not in request.headers:
            body = error_body(400, "anthropic-version: header is required", request_id)
            return json_response(dumps(body), 400, headers)
        if request.method == "POST" and (failure := behaviour.take_failure()) is not None:
            return _failure_response(failure, headers)
        return None

    async def messages(request: Request) -> Response:
        raw, body = await received(request, behaviour)
        headers = {"request-id": f"req_mock_{next(request_ids)}"}
        if (denied := refused(request, headers)) is not None:
            return denied
        if body is None:
            try:
                body = json.loads(raw)
            except ValueError:
                body = None
        if not isinstance(body, dict):
            return json_response(dumps(error_body(400, "Invalid JSON body.", headers["request-id"])), 400, headers)
        for name in ("model", "max_tokens", "messages"):
            if name not in body:
                problem = error_body(400, f"{name}: Field required", headers["request-id"])
                return json_response(dumps(problem), 400, headers)
        answer = message(body, behaviour)
        if isinstance(answer, bytes):
            return json_response(answer, 200, headers)
        return EventStream(answer, behaviour, headers)

    async def count_tokens(request: Request) -> Response:
        _, body = await received(request, behaviour)
        headers = {"request-id": f"req_mock_{next(request_ids)}"}
        if (denied := refused(request, headers)) is not None:
            return denied
        if not isinstance(body, dict) or "model" not in body or "messages" not in body:
            problem = error_body(400, "model and messages: Field required", headers["request-id"])
            return json_response(dumps(problem), 400, headers)
        total = prompt_tokens(body.get("messages") or [], system=body.get("system"))
        return json_response(dumps({"input_tokens": total}), 200, headers)

    return Starlette(
        routes=[
            Route("/v1/messages", messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        ]
    )


def main(argv: list[str] | None = None) -> None:
    run_cli("A local Anthropic Messages API mock provider.", create_mock_anthropic, "sk-ant-mock", argv)


if __name__ == "__main__":
    main()
