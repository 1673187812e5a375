"""POST /v1/responses: OpenAI's Responses API (the Agents SDK's default), streamed with its named
events or not; usage from the response, or from `response.completed` (see routes/common.py)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoint_request import parse_response_request
from gateway.errors import GatewayError
from gateway.providers.named_events import RESPONSES_FINAL, event_name, named_frame
from gateway.providers.results import ChatStream
from gateway.routes.common import Call
from gateway.token_usage import TokenUsage, responses_usage_block
from gateway.tokens import count_messages, count_text
from meterline.semconv import OPERATION_CHAT

ROUTE = "/v1/responses"


def input_tokens(body: dict[str, Any]) -> int:
    """The gateway's count of a Responses request's input: instructions plus input items."""
    items = body.get("input")
    messages: list[dict[str, Any]] = [{"role": "user", "content": items}] if isinstance(items, str) else []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            messages.append({"role": "user", "content": item.get("content") or str(item.get("output") or "")})
    if isinstance(instructions := body.get("instructions"), str):
        messages.append({"role": "system", "content": instructions})
    return count_messages(messages)


def error_event(error: GatewayError) -> bytes:
    return named_frame({"type": "error", "code": error.code, "message": error.message, "param": error.param})


async def responses(request: Request) -> Response:
    call = Call(request, ROUTE, OPERATION_CHAT)  # GenAI semconv has no separate name for the Responses API
    try:
        upstream, asked = await call.admit(parse_response_request)
        answer = await call.routed(upstream.responses(asked))
    except GatewayError as error:
        return call.fail(error)

    def estimate(texts: list[str]) -> TokenUsage:
        return TokenUsage(input_tokens=input_tokens(asked.body), output_tokens=count_text("".join(texts)))

    if isinstance(answer, ChatStream):
        return call.stream(answer, lambda event: event_name(event) in RESPONSES_FINAL, estimate, error_event)
    return call.respond(answer, estimate, responses_usage_block)
