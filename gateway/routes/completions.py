"""POST /v1/completions: OpenAI's legacy text completions, streamed or not (see routes/common.py)."""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoint_request import parse_completion_request
from gateway.errors import GatewayError
from gateway.providers.results import ChatStream
from gateway.providers.sse import DONE, sse
from gateway.request_tokens import prompt_tokens
from gateway.routes.common import Call
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
        tally = answer.tally

        def usage_event(last: bytes, usage: TokenUsage) -> bytes:
            """The usage chunk the client asked for, with the billed counts, just before [DONE]."""
            chunk: dict[str, Any] = {
                "id": tally.response_id,
                "object": "text_completion",
                "created": int(time.time()),
                "model": call.meter.answer.model if call.meter.answer is not None else asked.model,
                "choices": [],
                "usage": openai_usage_block(usage),
            }
            return last.removesuffix(DONE) + sse(chunk) + DONE

        return call.stream(
            answer,
            lambda event: event == DONE,
            estimate,
            lambda error: sse(error.body()),
            usage_event if asked.client_wants_usage else None,
        )
    return await call.respond(answer, estimate, openai_usage_block)
