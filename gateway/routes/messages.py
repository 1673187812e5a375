"""POST /v1/messages: Anthropic's Messages API, so agents on the `anthropic` SDK work unchanged.

Keys come as `x-api-key` or `Authorization: Bearer`; errors are Anthropic's error JSON
(anthropic_errors.py); `anthropic/` deployments get the request as it is
(providers/anthropic_direct.py), every other one through LiteLLM (providers/litellm_endpoints.py).
The rest is the shared flow in routes/common.py.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.anthropic_errors import anthropic_error_body, anthropic_error_response
from gateway.endpoint_request import EndpointRequest, parse_message_request
from gateway.errors import GatewayError
from gateway.providers.anthropic_direct import PASSED_HEADERS
from gateway.providers.named_events import event_name, named_frame
from gateway.providers.results import ChatStream
from gateway.request_tokens import messages_input_tokens as input_tokens
from gateway.routes.common import Call
from gateway.token_usage import TokenUsage, anthropic_usage_block
from gateway.tokens import count_text
from meterline.semconv import OPERATION_CHAT

ROUTE = "/v1/messages"


def error_event(error: GatewayError) -> bytes:
    return named_frame(anthropic_error_body(error))


async def messages(request: Request) -> Response:
    try:
        call = Call(request, ROUTE, OPERATION_CHAT, render=anthropic_error_response)
    except GatewayError as error:
        return anthropic_error_response(error)
    call.headers["request-id"] = call.meter.request_id
    headers = {name: request.headers[name] for name in PASSED_HEADERS if name in request.headers}

    def parse(body: bytes) -> EndpointRequest:
        return parse_message_request(body, headers)

    try:
        upstream, asked = await call.admit(parse)
        answer = await call.routed(upstream.messages(asked))
    except GatewayError as error:
        return call.fail(error)

    def estimate(texts: list[str]) -> TokenUsage:
        return TokenUsage(input_tokens=input_tokens(asked.body), output_tokens=count_text("".join(texts)))

    if isinstance(answer, ChatStream):
        return call.stream(answer, lambda event: event_name(event) == "message_stop", estimate, error_event)
    return await call.respond(answer, estimate, anthropic_usage_block)
