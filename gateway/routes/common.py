"""The flow every endpoint shares: authenticate, read and check the body, route, meter, finish.

A route builds one `Call` per request and hands it each step; the call keeps the request's
meter and response headers, and finishes the usage record exactly once (`state.finish`),
whether the request succeeds, fails, or its client leaves mid-stream.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import Response

from gateway.errors import GatewayError, GatewayNotReady, ModelNotAllowed, ModelNotFound, error_response
from gateway.json_codec import dumps, loads
from gateway.metering import Answer, RequestMeter
from gateway.output_bound import OutputBound
from gateway.providers.results import ChatResponse, ChatStream
from gateway.providers.sse import DONE, sse
from gateway.quotas.service import Admission
from gateway.request_body import read_body
from gateway.routes.event_stream import EventStreamResponse
from gateway.routing.failures import UpstreamFailure
from gateway.routing.router import Routed
from gateway.state import GatewayState
from gateway.telemetry.trace_context import from_traceparent
from gateway.token_usage import TokenUsage, openai_usage_block
from gateway.tokens import INLINE_CHARS, off_loop
from gateway.upstream import Upstream

Render = Callable[[GatewayError, dict[str, str]], Response]


class Asked(Protocol):
    """What the shared flow reads from a parsed request."""

    @property
    def model(self) -> str: ...

    @property
    def stream(self) -> bool: ...

    @property
    def output_bound(self) -> OutputBound: ...


T = TypeVar("T")
A = TypeVar("A", bound=Asked)


class Call:
    def __init__(self, request: Request, route: str, operation: str, render: Render = error_response) -> None:
        """Authenticates (raises InvalidApiKey); `Authorization: Bearer` or Anthropic's `x-api-key`."""
        self.state: GatewayState = request.app.state.gateway
        authorization = request.headers.get("authorization")
        if authorization is None and (key := request.headers.get("x-api-key")):
            authorization = f"Bearer {key}"
        identity = self.state.agents.authenticate(authorization)
        trace = from_traceparent(request.headers.get("traceparent"))
        self.meter = RequestMeter(identity=identity, trace=trace, operation=operation, labels=self.state.labels)
        self.headers = {"x-request-id": self.meter.request_id}
        self.route = route
        self.render = render
        self.admission: Admission | None = None
        self._request = request
        self._finished = False
        self._body_bytes = 0

    async def admit(self, parse: Callable[[bytes], A]) -> tuple[Upstream, A]:
        """The parsed body, once the gateway is ready, the model group exists and the agent may use it."""
        upstream = self.state.upstream
        if upstream is None:
            raise GatewayNotReady("The gateway is still starting; retry shortly.")
        if not self.state.exporter.accepting:  # a request it could not bill is refused, not served
            raise GatewayNotReady("The gateway cannot record usage right now (its usage spool is full); retry shortly.")
        raw = await read_body(self._request, self.state.max_body_bytes)
        self._body_bytes = len(raw)
        asked = parse(raw)
        self.meter.model_requested = asked.model
        self.meter.stream = asked.stream
        if not upstream.has_group(asked.model):
            raise ModelNotFound(
                f"The model '{asked.model}' does not exist or you do not have access to it.", param="model"
            )
        models = self.meter.identity.models
        if models is not None and asked.model not in models:
            agent = self.meter.identity.agent_id
            raise ModelNotAllowed(f"Agent '{agent}' may not use model '{asked.model}'.", param="model")
        await self._reserve(upstream, asked, len(raw))
        return upstream, asked

    async def _reserve(self, upstream: Upstream, asked: Asked, body_bytes: int) -> None:
        """Reserve the request's worst case against the agent's and its team's limits (429 if any
        would be exceeded); settled to the real usage in `finish`, released if nothing was used."""
        quotas = self.state.quotas
        identity = self.meter.identity
        if quotas is None or not quotas.has_limits(identity):
            return
        # Priced at the dearest model that may answer (the group's deployments and its fallbacks').
        answerers = upstream.router.answerers(asked.model)
        model, provider = answerers[0]
        # Input tokens from the body size: an upper bound for Latin text at ~2 bytes per token,
        # with no tokenizer on the request path; settlement replaces it with the real count.
        self.admission = await quotas.admit(
            identity,
            model=model,
            provider=provider,
            input_tokens=body_bytes // 2 + 16,
            max_output_tokens=asked.output_bound.max_tokens,
            completions=asked.output_bound.completions,
            alternatives=answerers[1:],
        )
        self.headers.update(self.admission.headers)

    async def routed(self, run: Awaitable[Routed[T]]) -> T:
        """The answer of the deployment that served the request; the attempts are metered either way."""
        try:
            routed = await run
        except UpstreamFailure as failure:
            self.meter.attempts = list(failure.attempts)  # type: ignore[arg-type]
            raise failure.to_client_error() from None
        self.meter.attempts = routed.attempts
        self.meter.answer = Answer(routed.deployment.model, routed.deployment.provider, routed.fallback_used)
        return routed.value

    def fail(self, error: GatewayError) -> Response:
        self.meter.failed(error)
        self.finish()
        return self.render(error, self.headers)

    def finish(
        self,
        usage: TokenUsage | None = None,
        estimate: Callable[[], TokenUsage] | None = None,
        response_id: str | None = None,
        finish_reasons: tuple[str, ...] = (),
    ) -> None:
        """Price the usage (counted by `estimate` when the provider reported none) and hand the
        record over. Only the first call counts."""
        if self._finished:
            return
        self._finished = True
        meter = self.meter
        if usage is None and estimate is not None and meter.answer is not None:
            usage = estimate()
            meter.usage_estimated = True
        upstream = self.state.upstream
        if usage is not None and meter.answer is not None and upstream is not None:
            meter.usage = usage
            meter.cost_usd = upstream.prices.cost_usd(meter.answer.model, meter.answer.provider, usage)
            meter.price_version = upstream.prices.version
        self.state.finish(meter, route=self.route, response_id=response_id, finish_reasons=finish_reasons)
        self._settle()

    def _settle(self) -> None:
        admission, quotas = self.admission, self.state.quotas
        if admission is None or quotas is None:
            return
        usage = self.meter.usage
        tokens = None if usage is None else usage.input_tokens + usage.output_tokens
        if (remote := quotas.settle_soon(admission, tokens=tokens, usd=self.meter.cost_usd)) is not None:
            self.state.later(remote)

    def release_quota(self) -> None:
        """Give back everything the request reserved, for an answer no provider billed (a
        response-cache hit): its tokens, its request and its parallel slot."""
        admission, quotas = self.admission, self.state.quotas
        if admission is None or quotas is None:
            return
        if (remote := quotas.settle_soon(admission, tokens=None, usd=0.0)) is not None:
            self.state.later(remote)

    def _counting_chars(self, texts: list[str]) -> int:
        """About how many characters the gateway's count encodes: the request body (its JSON is
        at least as long as its text) and the answer's text."""
        return self._body_bytes + sum(map(len, texts))

    async def _counted(self, estimate: Callable[[list[str]], TokenUsage], texts: list[str]) -> TokenUsage | None:
        """The gateway's count of an answered request's usage, in a thread for long text."""
        if self.meter.answer is None or self._finished:
            return None
        return await off_loop(lambda: estimate(texts), self._counting_chars(texts))

    async def respond(
        self,
        answer: ChatResponse,
        estimate: Callable[[list[str]], TokenUsage],
        usage_block: Callable[[TokenUsage], dict[str, int]] | None = None,
    ) -> Response:
        """A whole answer: metered, then sent as the provider's JSON body. When the gateway counted
        the usage (the provider reported none), `usage_block` puts the billed counts in the body."""
        usage = answer.usage
        counted = None if usage is not None else await self._counted(estimate, answer.texts)
        self.finish(usage, None if counted is None else lambda: counted, answer.response_id, answer.finish_reasons)
        if usage_block is not None and self.meter.usage_estimated and self.meter.usage is not None:
            answer.body = with_usage(answer.body, usage_block(self.meter.usage))
        return Response(answer.body, media_type="application/json", headers=self.headers)

    def stream(
        self,
        stream: ChatStream,
        is_last: Callable[[bytes], bool],
        estimate: Callable[[list[str]], TokenUsage],
        error_event: Callable[[GatewayError], bytes],
        usage_event: Callable[[bytes, TokenUsage], bytes] | None = None,
    ) -> EventStreamResponse:
        """Relay a stream; metered just before its last event, so a client that has read the
        whole stream is already in the ledger queue, or when the stream ends any other way.
        When the gateway counted the usage, `usage_event(last, usage)` rewrites the last event to
        carry the billed counts (for a client that asked for usage)."""
        headers = {**self.headers, "cache-control": "no-cache"}
        return EventStreamResponse(self._relay(stream, is_last, estimate, error_event, usage_event), headers)

    async def _relay(
        self,
        stream: ChatStream,
        is_last: Callable[[bytes], bool],
        estimate: Callable[[list[str]], TokenUsage],
        error_event: Callable[[GatewayError], bytes],
        usage_event: Callable[[bytes, TokenUsage], bytes] | None,
    ) -> AsyncIterator[bytes]:
        tally = stream.tally

        def finish(count: bool = True) -> None:
            usage = tally.usage
            counted = (lambda: estimate(tally.texts)) if count else None
            self.finish(usage, counted, tally.response_id, tuple(tally.finish_reasons))

        async def finish_off_loop() -> None:
            """`finish()`, with long text counted in a thread."""
            usage, texts = tally.usage, tally.texts
            counted = None if usage is not None else await self._counted(estimate, texts)
            reasons = tuple(tally.finish_reasons)
            self.finish(usage, None if counted is None else lambda: counted, tally.response_id, reasons)

        try:
            async for event in stream.events:
                self.meter.first_token()
                if is_last(event):
                    await finish_off_loop()
                    if usage_event is not None and self.meter.usage_estimated and self.meter.usage is not None:
                        event = usage_event(event, self.meter.usage)
                yield event
        except UpstreamFailure as failure:  # a mid-stream provider failure becomes an error event
            error = failure.to_client_error()
            self.meter.failed(error)
            # Before the event (a client may stop reading at an error). A failed stream is billed
            # what the provider reported, or nothing: never the gateway's guess.
            finish(count=False)
            yield error_event(error)
        except (asyncio.CancelledError, GeneratorExit):
            if not self._finished:
                self.meter.client_disconnected()
            # Closing our side of the upstream stream cancels the provider's generation.
            await asyncio.shield(stream.close())
            raise
        finally:
            if self._finished or tally.usage is not None or self._counting_chars(tally.texts) <= INLINE_CHARS:
                finish()
            else:  # the client left mid-stream: long text is counted in a thread, after the response
                self.state.later(finish_off_loop())


def with_usage(body: bytes, block: dict[str, int]) -> bytes:
    """A JSON response body with its `usage` replaced (a body that is not a JSON object: as it is)."""
    try:
        data = loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    data["usage"] = block
    return dumps(data)


def openai_usage_event(
    call: Call, stream: ChatStream, chunk_object: str, asked_model: str
) -> Callable[[bytes, TokenUsage], bytes]:
    """`Call.stream`'s usage_event for OpenAI's SSE endpoints: the usage chunk the client asked
    for (`chunk_object` is the endpoint's object name), with the billed counts, just before [DONE]."""

    def usage_event(last: bytes, usage: TokenUsage) -> bytes:
        chunk: dict[str, Any] = {
            "id": stream.tally.response_id,
            "object": chunk_object,
            "created": int(time.time()),
            "model": call.meter.answer.model if call.meter.answer is not None else asked_model,
            "choices": [],
            "usage": openai_usage_block(usage),
        }
        return last.removesuffix(DONE) + sse(chunk) + DONE

    return usage_event
