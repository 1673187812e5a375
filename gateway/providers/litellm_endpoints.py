"""LiteLLM's translation for the endpoints beyond chat: text completions, embeddings, the
Responses API and Anthropic Messages, one deployment per call (Meterline's router retries)."""

from __future__ import annotations

import asyncio
import base64
import struct
import sys
from collections.abc import AsyncIterator
from functools import cache
from typing import TYPE_CHECKING, Any

import httpx

from gateway.endpoint_request import EndpointRequest
from gateway.json_codec import dumps
from gateway.providers.anthropic_direct import message_response
from gateway.providers.http import SCRUBBED_EVENTS, anthropic_stream_error, scrubbed_frame
from gateway.providers.litellm_success_log import no_success_log
from gateway.providers.litellm_translate import _failure, _import_litellm
from gateway.providers.named_events import (
    AnthropicTally,
    ResponsesTally,
    event_name,
    frame_data,
    frames,
    litellm_estimate,
    named_frame,
)
from gateway.providers.openai_endpoints import absorb_completion_chunk, completion_response, responses_response
from gateway.providers.results import ChatResponse, ChatStream, StreamTally
from gateway.providers.sse import DONE, sse
from gateway.routing.deployments import OPENAI_NATIVE, Deployment

if TYPE_CHECKING:
    import openai
from gateway.routing.failures import UpstreamFailure
from gateway.token_usage import from_usage_block


def _dump(obj: Any) -> dict[str, Any]:
    """A LiteLLM object as the JSON a client receives, without LiteLLM's own `cost` annotation."""
    data: dict[str, Any] = (
        obj if isinstance(obj, dict) else obj.model_dump(mode="json", exclude_none=True, warnings=False)
    )
    if isinstance(data.get("usage"), dict):
        data["usage"].pop("cost", None)
    if isinstance(response := data.get("response"), dict) and isinstance(response.get("usage"), dict):
        response["usage"].pop("cost", None)
    return data


def _classified(exc: Exception, deployment: Deployment) -> UpstreamFailure:
    """`_failure`, plus what LiteLLM's endpoint handlers raise that its chat handler does not:
    httpx's transport errors unwrapped (a provider that drops a stream), and the HTTP status
    as the error code (`"429"`), which is not the provider's code."""
    if isinstance(exc, httpx.TimeoutException):
        return UpstreamFailure(_failure(exc, deployment).message, status=None, kind="timeout")
    if isinstance(exc, httpx.TransportError):
        return UpstreamFailure(_failure(exc, deployment).message, status=None, kind="connection")
    failure = _failure(exc, deployment)
    if failure.code is not None and failure.code.isdigit():
        failure.code = None
    return failure


def _encode(data: dict[str, Any]) -> bytes:
    return dumps(data)


@cache
def _no_retry_client() -> type[openai.AsyncOpenAI]:
    """The class of `_NoRetryClient`, built on first use: importing the openai SDK costs about
    a second of CPU, the largest part of the gateway's startup, and only the deployments that
    go through LiteLLM's OpenAI handlers need it."""
    import openai

    class _NoRetryClient(openai.AsyncOpenAI):
        """An OpenAI client that never retries, whatever LiteLLM sets on it: LiteLLM's OpenAI
        embedding handler reads `max_retries = max_retries or DEFAULT_MAX_RETRIES`, so the 0 the
        gateway passes becomes 2, and then sets that on the client it was given. The router must
        be the only one retrying, and must see every attempt."""

        @property
        def max_retries(self) -> int:
            return 0

        @max_retries.setter
        def max_retries(self, value: int) -> None:
            pass

    return _NoRetryClient


class LiteLLMEndpoints:
    def __init__(self) -> None:
        self._litellm: Any = None
        self._lock = asyncio.Lock()
        self._openai_clients: dict[tuple[str, str], openai.AsyncOpenAI] = {}

    async def close(self) -> None:
        """Close the HTTP clients LiteLLM cached on this event loop (for every LiteLLM call, chat's too)."""
        for client in self._openai_clients.values():
            await client.close()
        if self._litellm is not None or "litellm" in sys.modules:
            from litellm.llms.custom_httpx.async_client_cleanup import close_litellm_async_clients

            await close_litellm_async_clients()  # type: ignore[no-untyped-call]

    async def _lib(self) -> Any:
        # Imported (seconds) on first use: a gateway with only direct deployments may never need it.
        async with self._lock:
            if self._litellm is None:
                self._litellm = await asyncio.to_thread(_import_litellm)
        return self._litellm

    def _kwargs(self, deployment: Deployment, request: EndpointRequest, *consumed: str) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            **deployment.extra_params,
            **request.params(*consumed),
            "num_retries": 0,
            "max_retries": 0,
        }
        if deployment.api_key is not None:
            kwargs["api_key"] = deployment.api_key.reveal()
        if deployment.api_base is not None:
            kwargs["api_base"] = deployment.api_base
        return kwargs

    async def _call(self, deployment: Deployment, name: str, **kwargs: Any) -> Any:
        function = getattr(await self._lib(), name)
        try:
            with no_success_log():  # LiteLLM's logging payload, which Meterline never reads
                return await function(model=deployment.litellm_model, **kwargs)
        except Exception as exc:  # noqa: BLE001 - every LiteLLM exception is classified there, once
            raise _classified(exc, deployment) from None

    async def completions(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        kwargs = self._kwargs(deployment, request, "prompt")
        if deployment.provider in OPENAI_NATIVE:
            kwargs["client"] = self._openai_client(deployment)
        if request.stream:
            kwargs["stream_options"] = {**(request.body.get("stream_options") or {}), "include_usage": True}
        result = await self._call(
            deployment, "atext_completion", prompt=request.body["prompt"], stream=request.stream, **kwargs
        )
        if not request.stream:
            data = _dump(result)
            return completion_response(_encode(data), data)
        tally = StreamTally()

        async def events() -> AsyncIterator[bytes]:
            async for chunk in _mapped(result, deployment):
                data = _dump(chunk)
                choices = data.get("choices") or []
                if data.get("usage") is not None and all(
                    c.get("text") is None and not c.get("finish_reason") for c in choices
                ):
                    data["choices"] = []  # OpenAI's usage chunk carries no choices
                for choice in data.get("choices", []):
                    choice.setdefault("text", "")  # OpenAI's finish chunk carries an empty text
                if (out := absorb_completion_chunk(data, tally, request.client_wants_usage)) is not None:
                    yield sse(out)
            yield DONE

        return _stream(events(), tally)

    def _openai_client(self, deployment: Deployment) -> openai.AsyncOpenAI:
        """A client the gateway owns (and closes) for LiteLLM's OpenAI handlers: its text-completion
        handler otherwise builds one per call and never closes it, and its embedding handler's
        cached client retries on its own (see _NoRetryClient)."""
        key = deployment.api_key.reveal() if deployment.api_key is not None else "none"
        if (client := self._openai_clients.get((deployment.id, key))) is None:  # a rotated key: a new client
            client = _no_retry_client()(api_key=key, base_url=deployment.api_base, max_retries=0)
            self._openai_clients[(deployment.id, key)] = client
        return client

    async def embeddings(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse:
        kwargs = self._kwargs(deployment, request, "input", "encoding_format")
        if deployment.provider in OPENAI_NATIVE:
            kwargs["client"] = self._openai_client(deployment)
        # LiteLLM's response model holds floats only; base64 (the openai SDK's default) is
        # encoded here the way OpenAI encodes it: little-endian float32.
        data = _dump(await self._call(deployment, "aembedding", input=request.body["input"], **kwargs))
        if request.body.get("encoding_format") == "base64":
            for item in data.get("data") or []:
                vector = item.get("embedding") or []
                item["embedding"] = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
        return ChatResponse(_encode(data), from_usage_block(data.get("usage")))

    async def responses(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        kwargs = self._kwargs(deployment, request, "input")
        result = await self._call(
            deployment, "aresponses", input=request.body["input"], stream=request.stream, **kwargs
        )
        if not request.stream:
            data = _dump(result)
            return responses_response(_encode(data), data)
        # LiteLLM relays a native Responses provider's events, but counts tokens itself when the
        # provider reported none; the ledger must say the gateway counted (usage_estimated).
        reader = ResponsesTally(litellm_estimate if deployment.provider in OPENAI_NATIVE else None)

        async def events() -> AsyncIterator[bytes]:
            try:
                async for event in _mapped(result, deployment):
                    frame = named_frame(_dump(event))
                    if event_name(frame) in SCRUBBED_EVENTS:
                        frame = scrubbed_frame(frame, deployment)
                    reader.absorb(frame)
                    yield frame
            finally:
                reader.settle()

        return _stream(events(), reader.tally)

    async def messages(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        """Anthropic's format in and out, for a deployment that does not speak it."""
        kwargs = self._kwargs(deployment, request)
        module = (await self._lib()).anthropic.messages
        try:
            result = await module.acreate(model=deployment.litellm_model, stream=request.stream, **kwargs)
        except Exception as exc:  # noqa: BLE001 - classified there, once
            raise _classified(exc, deployment) from None
        if not request.stream:
            data = _dump(result)
            return message_response(_encode(data), data)
        reader = AnthropicTally()

        async def events() -> AsyncIterator[bytes]:
            try:
                async for frame in frames(_lines(_mapped(result, deployment))):
                    if event_name(frame) == "error":
                        raise anthropic_stream_error(frame_data(frame), deployment)
                    reader.absorb(frame)
                    yield frame
            finally:
                reader.settle()

        return _stream(events(), reader.tally)


async def _mapped(items: Any, deployment: Deployment) -> AsyncIterator[Any]:
    """LiteLLM's stream, its exceptions classified as they surface mid-stream."""
    try:
        async for item in items:
            yield item
    except UpstreamFailure:
        raise
    except Exception as exc:  # noqa: BLE001 - classified there, once
        raise _classified(exc, deployment) from None


async def _lines(chunks: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for chunk in chunks:
        data = chunk if isinstance(chunk, bytes) else str(chunk).encode()
        for line in data.splitlines(keepends=True):
            yield line


def _stream(iterator: AsyncIterator[bytes], tally: StreamTally) -> ChatStream:
    async def close() -> None:
        await iterator.aclose()  # type: ignore[attr-defined]

    return ChatStream(events=iterator, tally=tally, close=close)
