"""POST /v1/embeddings: input tokens metered, no output tokens (see routes/common.py)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from gateway.endpoint_request import parse_embedding_request
from gateway.errors import GatewayError
from gateway.request_tokens import prompt_tokens
from gateway.routes.common import Call
from gateway.token_usage import TokenUsage, embeddings_usage_block
from meterline.semconv import OPERATION_EMBEDDINGS

ROUTE = "/v1/embeddings"


async def embeddings(request: Request) -> Response:
    call = Call(request, ROUTE, OPERATION_EMBEDDINGS)
    try:
        upstream, asked = await call.admit(parse_embedding_request)
        answer = await call.routed(upstream.embeddings(asked))
    except GatewayError as error:
        return call.fail(error)
    return await call.respond(
        answer, lambda _: TokenUsage(input_tokens=prompt_tokens(asked.body["input"])), embeddings_usage_block
    )
