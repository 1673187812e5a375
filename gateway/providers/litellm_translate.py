"""Everything that is not OpenAI's protocol goes through LiteLLM's translation, one deployment
per call (Meterline's router, not LiteLLM's, picks it and retries)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from typing import Any

from gateway.chat_request import ChatRequest
from gateway.json_codec import dumps
from gateway.providers.client_params import for_litellm
from gateway.providers.litellm_success_log import no_success_log
from gateway.providers.results import ChatResponse, ChatStream, StreamTally
from gateway.providers.sse import DONE, absorb_chunk, sse
from gateway.routing.deployments import Deployment
from gateway.routing.failures import UpstreamFailure
from gateway.scrubbing import held_secrets, scrub_text
from gateway.token_usage import from_usage_block
from gateway.tokens import count_messages_off_loop


def _import_litellm() -> Any:
    # The bundled price table, not a download at import; see DESIGN.md.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    # LiteLLM logs every call at INFO; Meterline's own records carry that information.
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # On a mapped provider error LiteLLM print()s "Give Feedback / Get Help" (and for an unknown
    # provider a "Provider List" line) to stdout in ANSI red, outside logging, whatever stdout
    # is. The error itself reaches the client and the log through `_failure`. (Its log lines are
    # coloured only when stdout and stderr are both terminals, or never with NO_COLOR.)
    litellm.suppress_debug_info = True
    return litellm


_NETWORK_MODULES = ("httpx", "httpcore", "aiohttp", "anyio", "ssl", "socket", "h11", "h2")


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (OSError, TimeoutError)):
        return True
    return type(exc).__module__.split(".")[0] in _NETWORK_MODULES


def _failure(exc: Exception, deployment: Deployment) -> UpstreamFailure:
    name = type(exc).__name__
    held = held_secrets(deployment.api_key)
    message = scrub_text(str(getattr(exc, "message", "") or exc) or name, held)
    # LiteLLM appends the traceback of an unexpected exception to the message; clients never see it.
    message = message.split("\nTraceback (most recent call last)", 1)[0].strip() or name
    if name == "Timeout" or isinstance(exc, TimeoutError):
        return UpstreamFailure(message[:1000], status=None, kind="timeout")
    if name == "APIConnectionError":
        cause = exc.__cause__ or exc.__context__
        if cause is not None and not _is_network_error(cause):
            # LiteLLM wraps its own translation crashes (a KeyError on a message it cannot map)
            # in APIConnectionError; that is a request this provider path cannot take, not a
            # network failure: terminal, and the client's to fix.
            return UpstreamFailure(
                f"the request could not be translated for provider {deployment.provider}: {message}"[:1000],
                status=400,
            )
        return UpstreamFailure(message[:1000], status=None, kind="connection")
    status = getattr(exc, "status_code", None)
    retry_after = None
    # LiteLLM keeps the provider's response headers on the exception.
    headers = getattr(exc, "litellm_response_headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    if headers is not None and (value := headers.get("retry-after")):
        try:
            retry_after = float(value)
        except ValueError:
            retry_after = None
    code = getattr(exc, "code", None)
    body = getattr(exc, "body", None)
    if code is None and isinstance(body, dict):
        code = (body.get("error") or body).get("code") if isinstance(body.get("error") or body, dict) else None
    return UpstreamFailure(
        message[:1000],
        status=status if isinstance(status, int) else 502,
        retry_after=retry_after,
        code=scrub_text(code, held) if isinstance(code, str) else None,
        context_window=name == "ContextWindowExceededError" or code == "context_length_exceeded",
    )


def provider_reported_usage(stream: Any) -> bool:
    """Whether the provider itself sent usage in a LiteLLM stream. When it sent none, LiteLLM
    makes up a count for the stream's last chunk; the provider's own usage is on one of the
    chunks LiteLLM keeps (`CustomStreamWrapper.chunks`). A stream without that list is trusted
    (LiteLLM's text-completion stream keeps none: there its count cannot be told apart)."""
    kept = getattr(stream, "chunks", None)
    if not isinstance(kept, list):
        return True
    return any(getattr(chunk, "usage", None) is not None for chunk in kept)


class LiteLLMTranslate:
    def __init__(self) -> None:
        self._litellm: Any = None

    async def start(self) -> None:
        self._litellm = await asyncio.to_thread(_import_litellm)

    async def close(self) -> None:
        return None

    async def chat(self, deployment: Deployment, request: ChatRequest) -> ChatResponse | ChatStream:
        litellm = self._litellm
        kwargs: dict[str, Any] = {**deployment.extra_params, **for_litellm(request.params)}
        if deployment.api_key is not None:
            kwargs["api_key"] = deployment.api_key.reveal()
        if deployment.api_base is not None:
            kwargs["api_base"] = deployment.api_base
        if request.stream:
            kwargs["stream_options"] = {**request.stream_options, "include_usage": True}
        if "mock_response" in kwargs:
            # LiteLLM's mock provider reports the admission estimate of input tokens as usage.
            kwargs["metadata"] = {
                "user_api_key_budget_reservation": {"input_tokens": await count_messages_off_loop(request.messages)}
            }
        try:
            with no_success_log():
                result = await litellm.acompletion(
                    model=deployment.litellm_model,
                    messages=request.messages,
                    stream=request.stream,
                    num_retries=0,
                    **kwargs,
                )
        except Exception as exc:  # noqa: BLE001 - every LiteLLM exception is classified here, once
            raise _failure(exc, deployment) from None
        if request.stream:
            return self._stream(result, request.client_wants_usage, deployment)
        data = result.model_dump(exclude_none=True)
        if isinstance(data.get("usage"), dict):
            data["usage"].pop("cost", None)
        choices = data.get("choices") or []
        usage = from_usage_block(data.get("usage"))
        return ChatResponse(
            body=dumps(data),
            usage=usage,
            response_id=data.get("id"),
            finish_reasons=tuple(str(c["finish_reason"]) for c in choices if c.get("finish_reason")),
            texts=[] if usage else [str((c.get("message") or {}).get("content") or "") for c in choices],
        )

    def _stream(self, chunks: Any, client_wants_usage: bool, deployment: Deployment) -> ChatStream:
        tally = StreamTally()

        async def events() -> AsyncIterator[bytes]:
            try:
                async for chunk in chunks:
                    data = chunk.model_dump(exclude_none=True)
                    if data.get("usage") is not None and not provider_reported_usage(chunks):
                        # LiteLLM's own count: the gateway counts instead and flags the record,
                        # as on the direct path (the route shows the client the billed counts).
                        del data["usage"]
                        if all(not c.get("delta") and not c.get("finish_reason") for c in data.get("choices") or []):
                            continue
                    if data.get("usage") is not None and all(
                        not c.get("delta") and not c.get("finish_reason") for c in data.get("choices") or []
                    ):
                        data["choices"] = []  # OpenAI's usage chunk carries no choices
                    out = absorb_chunk(data, tally, client_wants_usage)
                    if out is not None:
                        yield sse(out)
            except Exception as exc:  # noqa: BLE001 - mapped, then surfaced by the route as an SSE error
                raise _failure(exc, deployment) from None
            yield DONE

        iterator = events()

        async def close() -> None:
            await iterator.aclose()  # type: ignore[attr-defined]

        return ChatStream(events=iterator, tally=tally, close=close)
