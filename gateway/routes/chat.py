"""POST /v1/chat/completions: authenticate, validate, route to a provider, meter, respond.

The request's path through the gateway, in order: auth.py (who is calling) ->
chat_request.py (what they asked) -> upstream.py -> routing/router.py (which deployment,
retries, fallbacks) -> providers/openai_direct.py or providers/litellm_translate.py ->
token_usage.py and pricing.py (what it cost) -> metering.py (the usage record) ->
telemetry/exporter.py (off the path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.cache import keys
from gateway.chat_request import ChatRequest, parse_chat_request
from gateway.errors import GatewayError, GatewayNotReady, ModelNotAllowed, ModelNotFound, error_response
from gateway.metering import Answer, RequestMeter
from gateway.providers.results import ChatResponse, ChatStream
from gateway.providers.sse import DONE, sse
from gateway.request_body import read_body
from gateway.routing.failures import UpstreamFailure
from gateway.routing.router import Routed
from gateway.state import GatewayState
from gateway.telemetry.trace_context import from_traceparent
from gateway.token_usage import TokenUsage, from_usage_block
from gateway.tokens import count_messages, count_text
from gateway.upstream import Upstream
from meterline.semconv import OPERATION_CHAT

ROUTE = "/v1/chat/completions"


async def chat_completions(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    identity = state.agents.authenticate(request.headers.get("authorization"))
    trace = from_traceparent(request.headers.get("traceparent"))
    meter = RequestMeter(identity=identity, trace=trace, operation=OPERATION_CHAT, labels=state.labels)
    headers = {"x-request-id": meter.request_id}
    try:
        upstream = state.upstream
        if upstream is None:
            raise GatewayNotReady("The gateway is still starting; retry shortly.")
        chat = parse_chat_request(await read_body(request, state.max_body_bytes))
        meter.model_requested = chat.model
        meter.stream = chat.stream
        if not upstream.has_group(chat.model):
            raise ModelNotFound(
                f"The model '{chat.model}' does not exist or you do not have access to it.", param="model"
            )
        if identity.models is not None and chat.model not in identity.models:
            raise ModelNotAllowed(f"Agent '{identity.agent_id}' may not use model '{chat.model}'.", param="model")
        cache_key = None
        if state.cache is not None and state.cached_group(chat.model) and not chat.stream:
            cache_key = keys.cache_key(chat.model, chat.answer_relevant_body(), endpoint=ROUTE)
            if (hit := await state.cache.get(cache_key)) is not None:
                return _serve_cached(state, upstream, meter, hit, headers)
        try:
            routed = await upstream.chat(chat)
        except UpstreamFailure as failure:
            meter.attempts = list(failure.attempts)  # type: ignore[arg-type]
            raise failure.to_client_error() from None
    except GatewayError as error:
        meter.failed(error)
        state.finish(meter, route=ROUTE)
        return error_response(error, headers)

    _answered(meter, routed)
    result = routed.value
    if isinstance(result, ChatStream):
        headers["cache-control"] = "no-cache"
        return StreamingResponse(
            _relay(state, upstream, meter, chat, result), media_type="text/event-stream", headers=headers
        )

    usage = result.usage
    if usage is None:
        usage = _estimate(chat, result.texts)
        meter.usage_estimated = True
    _price(upstream, meter, usage)
    state.finish(meter, route=ROUTE, response_id=result.response_id, finish_reasons=result.finish_reasons)
    if cache_key is not None and state.cache is not None and meter.answer is not None:
        entry = {"model": meter.answer.model, "provider": meter.answer.provider, "body": result.body.decode()}
        await state.cache.set(cache_key, json.dumps(entry).encode(), state.config.response_cache.ttl_seconds)
    return Response(result.body, media_type="application/json", headers=headers)


def _serve_cached(
    state: GatewayState, upstream: Upstream, meter: RequestMeter, hit: bytes, headers: dict[str, str]
) -> Response:
    """A cache hit costs nothing; the record says what it would have cost."""
    entry = json.loads(hit)
    body = entry["body"].encode()
    data = json.loads(body)
    usage = from_usage_block(data.get("usage")) or TokenUsage()
    meter.answer = Answer(entry["model"], entry["provider"])
    meter.cache_hit = True
    meter.usage = usage
    meter.cost_saved_usd = upstream.prices.cost_usd(entry["model"], entry["provider"], usage)
    meter.price_version = upstream.prices.version
    state.finish(meter, route=ROUTE, response_id=data.get("id"))
    return Response(body, media_type="application/json", headers={**headers, "x-meterline-cache": "hit"})


def _answered(meter: RequestMeter, routed: Routed[ChatResponse | ChatStream]) -> None:
    meter.attempts = routed.attempts
    meter.answer = Answer(routed.deployment.model, routed.deployment.provider, routed.fallback_used)


def _price(upstream: Upstream, meter: RequestMeter, usage: TokenUsage) -> None:
    meter.usage = usage
    if meter.answer is not None:
        meter.cost_usd = upstream.prices.cost_usd(meter.answer.model, meter.answer.provider, usage)
        meter.price_version = upstream.prices.version


def _estimate(chat: ChatRequest, texts: list[str]) -> TokenUsage:
    """Usage counted by the gateway when the provider reported none."""
    return TokenUsage(input_tokens=count_messages(chat.messages), output_tokens=count_text("".join(texts)))


async def _relay(
    state: GatewayState, upstream: Upstream, meter: RequestMeter, chat: ChatRequest, stream: ChatStream
) -> AsyncIterator[bytes]:
    metered = False

    def finish() -> None:
        nonlocal metered
        metered = True
        tally = stream.tally
        usage = tally.usage
        if usage is None:
            usage = _estimate(chat, tally.texts)
            meter.usage_estimated = True
        _price(upstream, meter, usage)
        state.finish(meter, route=ROUTE, response_id=tally.response_id, finish_reasons=tuple(tally.finish_reasons))

    try:
        async for event in stream.events:
            meter.first_token()
            if event == DONE:
                # Metered before [DONE]: a client that has read the whole stream is already in the ledger queue.
                finish()
            yield event
    except UpstreamFailure as failure:  # a mid-stream provider failure becomes an SSE error event
        error = failure.to_client_error()
        meter.failed(error)
        yield sse(error.body())
    except (asyncio.CancelledError, GeneratorExit):
        if not metered:
            meter.client_disconnected()
        # Closing our side of the upstream stream cancels the provider's generation.
        await asyncio.shield(stream.close())
        raise
    finally:
        if not metered:
            finish()
