"""Direct forwards of OpenAI's other endpoints (/completions, /embeddings, /responses) to
providers that speak OpenAI's protocol: inject the key, keep the body, parse what the ledger needs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from gateway.endpoint_request import EndpointRequest
from gateway.providers.h1 import Response
from gateway.providers.http import (
    SCRUBBED_EVENTS,
    body_lines,
    post,
    read_json,
    responses_stream_error,
    scrubbed_frame,
    stream_error,
)
from gateway.providers.named_events import ResponsesTally, event_name, frame_data, frames
from gateway.providers.results import ChatResponse, ChatStream, StreamTally
from gateway.providers.session import SessionOwner
from gateway.providers.sse import DONE, absorb_chunk, sse
from gateway.routing.deployments import Deployment
from gateway.token_usage import from_responses_usage, from_usage_block


def absorb_completion_chunk(
    data: dict[str, Any], tally: StreamTally, client_wants_usage: bool
) -> dict[str, Any] | None:
    """A /completions stream chunk: its texts and finish reasons tallied, the usage chunk
    dropped unless the client asked for it."""
    for choice in data.get("choices") or []:
        if isinstance(text := choice.get("text"), str):
            tally.texts.append(text)
    return absorb_chunk(data, tally, client_wants_usage)


def completion_response(body: bytes, data: dict[str, Any]) -> ChatResponse:
    choices = data.get("choices") or []
    usage = from_usage_block(data.get("usage"))
    return ChatResponse(
        body=body,
        usage=usage,
        response_id=data.get("id"),
        finish_reasons=tuple(str(c["finish_reason"]) for c in choices if c.get("finish_reason")),
        texts=[] if usage else [str(c.get("text") or "") for c in choices],
    )


def responses_response(body: bytes, data: dict[str, Any]) -> ChatResponse:
    usage = from_responses_usage(data.get("usage"))
    texts = []
    if usage is None:
        for item in data.get("output") or []:
            texts += [str(p.get("text") or "") for p in item.get("content") or [] if isinstance(p, dict)]
            texts.append(str(item.get("arguments") or ""))
    status = data.get("status")
    return ChatResponse(body, usage, data.get("id"), (str(status),) if status else (), texts)


class OpenAIEndpoints(SessionOwner):
    async def _post(self, deployment: Deployment, path: str, body: dict[str, Any]) -> Response:
        headers = {}
        if deployment.api_key is not None:
            headers["Authorization"] = f"Bearer {deployment.api_key.reveal()}"
        return await post(self.client, f"{deployment.api_base}{path}", body, headers, deployment)

    async def completions(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        body = {**request.body, "model": deployment.model}
        if request.stream:
            body["stream_options"] = {**(request.body.get("stream_options") or {}), "include_usage": True}
        response = await self._post(deployment, "/completions", body)
        if request.stream:
            return self._completion_stream(response, request.client_wants_usage, deployment)
        return completion_response(*await read_json(response, deployment))

    async def embeddings(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse:
        response = await self._post(deployment, "/embeddings", {**request.body, "model": deployment.model})
        body, data = await read_json(response, deployment)
        return ChatResponse(body, from_usage_block(data.get("usage")))

    async def responses(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        response = await self._post(deployment, "/responses", {**request.body, "model": deployment.model})
        if request.stream:
            return self._responses_stream(response, deployment)
        return responses_response(*await read_json(response, deployment))

    def _completion_stream(self, response: Response, client_wants_usage: bool, deployment: Deployment) -> ChatStream:
        tally = StreamTally()

        async def events() -> AsyncIterator[bytes]:
            try:
                async for frame in frames(body_lines(response, deployment)):
                    payload = frame.removeprefix(b"data:").strip()
                    if payload == b"[DONE]":
                        break
                    if b'"error"' in payload and (failure := stream_error(payload, deployment)) is not None:
                        raise failure
                    out = absorb_completion_chunk(json.loads(payload), tally, client_wants_usage)
                    if out is not None:
                        yield sse(out)
                yield DONE
            finally:
                response.release()

        return _stream(events(), tally, response)

    def _responses_stream(self, response: Response, deployment: Deployment) -> ChatStream:
        reader = ResponsesTally()

        async def events() -> AsyncIterator[bytes]:
            try:
                async for frame in frames(body_lines(response, deployment)):
                    name = event_name(frame)
                    if name == "error":  # a failure, as LiteLLM's path reports it: the route's error event
                        raise responses_stream_error(frame_data(frame), deployment)
                    if name in SCRUBBED_EVENTS:
                        frame = scrubbed_frame(frame, deployment)
                    reader.absorb(frame)
                    yield frame
            finally:
                response.release()
                reader.settle()

        return _stream(events(), reader.tally, response)


def _stream(iterator: AsyncIterator[bytes], tally: StreamTally, response: Response) -> ChatStream:
    async def close() -> None:
        await iterator.aclose()  # type: ignore[attr-defined]
        response.close()

    return ChatStream(events=iterator, tally=tally, close=close)
