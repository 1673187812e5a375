"""POST /v1/chat/completions: authenticate, validate, route to a provider, meter, respond.

The request's path through the gateway, in order: routes/common.py `Call` (auth.py: who is
calling; request_body.py + chat_request.py: what they asked; the model group and the agent's
models) -> cache/ (opt-in exact-match cache) -> upstream.py -> routing/router.py (which
deployment, retries, fallbacks) -> providers/openai_direct.py or providers/litellm_translate.py
-> token_usage.py and pricing.py (what it cost) -> metering.py (the usage record) ->
telemetry/exporter.py (off the path).
"""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from gateway.cache import keys
from gateway.chat_request import ChatRequest, parse_chat_request
from gateway.errors import GatewayError
from gateway.metering import Answer
from gateway.providers.results import ChatResponse, ChatStream
from gateway.providers.sse import DONE, sse
from gateway.routes.common import Call, openai_usage_event
from gateway.token_usage import TokenUsage, from_usage_block, openai_usage_block
from gateway.tokens import count_messages, count_text
from gateway.upstream import Upstream
from meterline.semconv import OPERATION_CHAT

ROUTE = "/v1/chat/completions"


async def chat_completions(request: Request) -> Response:
    call = Call(request, ROUTE, OPERATION_CHAT)
    cache_key = None
    try:
        upstream, chat = await call.admit(parse_chat_request)
        state = call.state
        if state.cache is not None and state.cached_group(chat.model) and not chat.stream:
            cache_key = keys.cache_key(chat.model, chat.answer_relevant_body(), endpoint=ROUTE)
            if (hit := await state.cache.get(cache_key)) is not None:
                return _serve_cached(call, upstream, hit)
        answer = await call.routed(upstream.chat(chat))
    except GatewayError as error:
        return call.fail(error)

    def estimate(texts: list[str]) -> TokenUsage:
        return _estimate(chat, texts)

    if isinstance(answer, ChatStream):
        return call.stream(
            answer,
            lambda event: event.endswith(DONE),
            estimate,
            lambda error: sse(error.body()),
            openai_usage_event(call, answer, "chat.completion.chunk", chat.model) if chat.client_wants_usage else None,
        )
    response = await call.respond(answer, estimate, openai_usage_block)
    if cache_key is not None:
        await _store(call, cache_key, answer)
    return response


def _estimate(chat: ChatRequest, texts: list[str]) -> TokenUsage:
    """Usage counted by the gateway when the provider reported none."""
    return TokenUsage(input_tokens=count_messages(chat.messages), output_tokens=count_text("".join(texts)))


async def _store(call: Call, key: str, answer: ChatResponse) -> None:
    state, meter = call.state, call.meter
    if state.cache is None or meter.answer is None:
        return
    entry = {"model": meter.answer.model, "provider": meter.answer.provider, "body": answer.body.decode()}
    await state.cache.set(key, json.dumps(entry).encode(), state.config.response_cache.ttl_seconds)


def _serve_cached(call: Call, upstream: Upstream, hit: bytes) -> Response:
    """A cache hit costs nothing; the record says what it would have cost."""
    entry = json.loads(hit)
    body = entry["body"].encode()
    data = json.loads(body)
    usage = from_usage_block(data.get("usage")) or TokenUsage()
    meter = call.meter
    meter.answer = Answer(entry["model"], entry["provider"])
    meter.cache_hit = True
    meter.usage = usage
    meter.cost_saved_usd = upstream.prices.cost_usd(entry["model"], entry["provider"], usage)
    meter.price_version = upstream.prices.version
    call.state.finish(meter, route=ROUTE, response_id=data.get("id"))
    call.release_quota()  # the provider billed nothing: the reservation goes back
    return Response(body, media_type="application/json", headers={**call.headers, "x-meterline-cache": "hit"})
