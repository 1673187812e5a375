"""POST /v1/chat/completions: authenticate, validate, call the provider, meter, respond.

The request's path through the gateway, in order: auth.py (who is calling) ->
chat_request.py (what they asked) -> upstream.py (LiteLLM) -> token_usage.py and pricing.py
(what it cost) -> metering.py (the usage record) -> telemetry/exporter.py (off the path).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from gateway.chat_request import ChatRequest, parse_chat_request
from gateway.errors import GatewayError, GatewayNotReady, ModelNotAllowed, ModelNotFound, error_response, from_upstream
from gateway.metering import RequestMeter
from gateway.state import GatewayState
from gateway.telemetry.trace_context import from_traceparent
from gateway.token_usage import TokenUsage, from_usage_block
from gateway.upstream import Upstream
from meterline.semconv import OPERATION_CHAT

ROUTE = "/v1/chat/completions"


def _dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


async def chat_completions(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    identity = state.agents.authenticate(request.headers.get("authorization"))
    trace = from_traceparent(request.headers.get("traceparent"))
    meter = RequestMeter(identity=identity, trace=trace, operation=OPERATION_CHAT, deployment=state.deployment)
    headers = {"x-request-id": meter.request_id}
    try:
        upstream = state.upstream
        if upstream is None:
            raise GatewayNotReady("The gateway is still starting; retry shortly.")
        chat = parse_chat_request(await request.body())
        meter.model_requested = chat.model
        meter.stream = chat.stream
        if not upstream.has_group(chat.model):
            raise ModelNotFound(
                f"The model '{chat.model}' does not exist or you do not have access to it.", param="model"
            )
        if identity.models is not None and chat.model not in identity.models:
            raise ModelNotAllowed(f"Agent '{identity.agent_id}' may not use model '{chat.model}'.", param="model")
        input_tokens = upstream.count_input_tokens(chat.model, chat.messages)
        meter.upstream_called = True
        try:
            result = await upstream.chat(chat, input_tokens)
        except Exception as exc:  # every upstream failure goes through the one error map
            raise from_upstream(exc) from exc
    except GatewayError as error:
        meter.failed(error)
        state.finish(meter, parent_span_id=trace.parent_span_id, route=ROUTE)
        return error_response(error, headers)

    if chat.stream:
        body = _stream(state, upstream, meter, chat, result, input_tokens)
        headers["cache-control"] = "no-cache"
        return StreamingResponse(body, media_type="text/event-stream", headers=headers)

    meter.answer = upstream.answer_of(result, chat.model)
    data = result.model_dump(exclude_none=True)
    usage = from_usage_block(data.get("usage"))
    if usage is None:
        usage = _estimate(upstream, chat, input_tokens, [c.get("message", {}).get("content") for c in data["choices"]])
        meter.usage_estimated = True
    if isinstance(data.get("usage"), dict):
        data["usage"].pop("cost", None)  # LiteLLM's annotation, not part of OpenAI's schema
    _price(upstream, meter, usage)
    finish_reasons = tuple(str(c.get("finish_reason")) for c in data.get("choices", []) if c.get("finish_reason"))
    state.finish(
        meter,
        parent_span_id=trace.parent_span_id,
        route=ROUTE,
        response_id=data.get("id"),
        finish_reasons=finish_reasons,
    )
    return Response(_dumps(data), media_type="application/json", headers=headers)


def _price(upstream: Upstream, meter: RequestMeter, usage: TokenUsage) -> None:
    meter.usage = usage
    answer = meter.answer
    if answer is not None:
        meter.cost_usd = upstream.prices.cost_usd(answer.model, answer.provider, usage)
        meter.price_version = upstream.prices.version


def _estimate(upstream: Upstream, chat: ChatRequest, input_tokens: int, texts: list[Any]) -> TokenUsage:
    """Usage counted by the gateway when the provider reported none."""
    text = "".join(t for t in texts if isinstance(t, str))
    output = upstream.count_input_tokens(chat.model, [{"role": "assistant", "content": text}]) if text else 0
    return TokenUsage(input_tokens=input_tokens, output_tokens=output)


async def _stream(
    state: GatewayState,
    upstream: Upstream,
    meter: RequestMeter,
    chat: ChatRequest,
    chunks: Any,
    input_tokens: int,
) -> AsyncIterator[str]:
    usage: TokenUsage | None = None
    texts: list[Any] = []
    response_id: str | None = None
    finish_reasons: list[str] = []
    metered = False

    def finish() -> None:
        nonlocal metered, usage
        metered = True
        meter.answer = upstream.answer_of(chunks, chat.model)
        if usage is None:
            usage = _estimate(upstream, chat, input_tokens, texts)
            meter.usage_estimated = True
        _price(upstream, meter, usage)
        state.finish(
            meter,
            parent_span_id=meter.trace.parent_span_id,
            route=ROUTE,
            response_id=response_id,
            finish_reasons=tuple(finish_reasons),
        )

    try:
        async for chunk in chunks:
            meter.first_token()
            data = chunk.model_dump(exclude_none=True)
            response_id = response_id or data.get("id")
            if (block := data.get("usage")) is not None:
                usage = from_usage_block(block) or usage
                block.pop("cost", None)
                if all(not c.get("delta") and not c.get("finish_reason") for c in data.get("choices", [])):
                    data["choices"] = []  # OpenAI's usage chunk carries no choices
                if not chat.client_wants_usage:
                    if not data.get("choices"):
                        continue  # the usage-only chunk the client did not ask for
                    del data["usage"]
            for choice in data.get("choices", []):
                texts.append(choice.get("delta", {}).get("content"))
                if choice.get("finish_reason"):
                    finish_reasons.append(str(choice["finish_reason"]))
            yield f"data: {_dumps(data)}\n\n"
        # Metered before [DONE], so a client that has read the whole stream is already in the ledger queue.
        finish()
        yield "data: [DONE]\n\n"
    except (asyncio.CancelledError, GeneratorExit):
        if not metered:
            meter.client_disconnected()
        raise
    except Exception as exc:  # noqa: BLE001 - a mid-stream provider failure becomes an SSE error event
        error = from_upstream(exc)
        meter.failed(error)
        yield f"data: {_dumps(error.body())}\n\n"
    finally:
        if not metered:
            finish()
