"""POST /v1/responses: OpenAI's Responses API (the Agents SDK's default), streamed with its named
events or not; usage from the response, or from `response.completed` (see routes/common.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoint_request import parse_response_request
from gateway.errors import GatewayError
from gateway.providers.named_events import RESPONSES_FINAL, event_name, named_frame
from gateway.providers.results import ChatStream
from gateway.request_tokens import responses_input_tokens as input_tokens
from gateway.routes.common import Call
from gateway.token_usage import TokenUsage, responses_usage_block
from gateway.tokens import count_text
from meterline.semconv import OPERATION_CHAT

ROUTE = "/v1/responses"


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
    return await call.respond(answer, estimate, responses_usage_block)
