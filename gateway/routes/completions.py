"""POST /v1/completions: OpenAI's legacy text completions, streamed or not (see routes/common.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoint_request import parse_completion_request
from gateway.errors import GatewayError
from gateway.providers.results import ChatStream
from gateway.providers.sse import DONE, sse
from gateway.request_tokens import prompt_tokens
from gateway.routes.common import Call, openai_usage_event
from gateway.token_usage import TokenUsage, openai_usage_block
from gateway.tokens import count_text
from meterline.semconv import OPERATION_TEXT_COMPLETION

ROUTE = "/v1/completions"


async def completions(request: Request) -> Response:
    call = Call(request, ROUTE, OPERATION_TEXT_COMPLETION)
    try:
        upstream, asked = await call.admit(parse_completion_request)
        answer = await call.routed(upstream.completions(asked))
    except GatewayError as error:
        return call.fail(error)

    def estimate(texts: list[str]) -> TokenUsage:
        return TokenUsage(input_tokens=prompt_tokens(asked.body["prompt"]), output_tokens=count_text("".join(texts)))

    if isinstance(answer, ChatStream):
        return call.stream(
            answer,
            lambda event: event == DONE,
            estimate,
            lambda error: sse(error.body()),
            openai_usage_event(call, answer, "text_completion", asked.model) if asked.client_wants_usage else None,
        )
    return await call.respond(answer, estimate, openai_usage_block)
