"""Direct forward of Anthropic Messages requests to `anthropic/` deployments: inject `x-api-key`
and `anthropic-version`, keep the body (model replaced by the deployment's), parse the usage."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.endpoint_request import EndpointRequest
from gateway.providers.http import anthropic_stream_error, body_lines, post, read_json
from gateway.providers.named_events import AnthropicTally, event_name, frame_data, frames
from gateway.providers.results import ChatResponse, ChatStream
from gateway.providers.session import SessionOwner
from gateway.routing.deployments import Deployment
from gateway.routing.failures import UpstreamFailure
from gateway.token_usage import from_anthropic_usage

DEFAULT_BASE = "https://api.anthropic.com"
DEFAULT_VERSION = "2023-06-01"
PASSED_HEADERS = ("anthropic-version", "anthropic-beta")


def messages_url(api_base: str | None) -> str:
    """LiteLLM's convention: api_base may be the host, `.../v1`, or the full `.../v1/messages`."""
    base = (api_base or DEFAULT_BASE).rstrip("/")
    if base.endswith("/v1/messages"):
        return base
    if base.endswith("/v1"):
        return f"{base}/messages"
    return f"{base}/v1/messages"


def message_response(body: bytes, data: dict[str, object]) -> ChatResponse:
    usage = from_anthropic_usage(data.get("usage"))
    content = data.get("content")
    texts: list[str] = []
    if usage is None and isinstance(content, list):
        texts = [str(b.get("text") or b.get("input") or "") for b in content if isinstance(b, dict)]
    reason = data.get("stop_reason")
    response_id = data.get("id")
    return ChatResponse(
        body,
        usage,
        response_id if isinstance(response_id, str) else None,
        (str(reason),) if reason else (),
        texts,
    )


class AnthropicDirect(SessionOwner):
    def _headers(self, deployment: Deployment, request: EndpointRequest) -> dict[str, str]:
        headers = {"anthropic-version": DEFAULT_VERSION}
        headers |= {name: request.headers[name] for name in PASSED_HEADERS if name in request.headers}
        if deployment.api_key is not None:
            headers["x-api-key"] = deployment.api_key.reveal()
        return headers

    async def count_tokens(self, deployment: Deployment, request: EndpointRequest) -> int:
        """Anthropic's own count of a Messages request's input (`/v1/messages/count_tokens`);
        UpstreamFailure when the provider refuses or does not answer with a count."""
        body = {**request.body, "model": deployment.model}
        url = f"{messages_url(deployment.api_base)}/count_tokens"
        response = await post(self.client, url, body, self._headers(deployment, request), deployment)
        _, data = await read_json(response, deployment)
        tokens = data.get("input_tokens")
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 0:
            raise UpstreamFailure("the provider's token count has no input_tokens", status=502)
        return tokens

    async def messages(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        headers = self._headers(deployment, request)
        body = {**request.body, "model": deployment.model}
        response = await post(self.client, messages_url(deployment.api_base), body, headers, deployment)
        if not request.stream:
            return message_response(*await read_json(response, deployment))
        reader = AnthropicTally()

        async def events() -> AsyncIterator[bytes]:
            try:
                async for frame in frames(body_lines(response, deployment)):
                    if event_name(frame) == "error":
                        raise anthropic_stream_error(frame_data(frame), deployment)
                    reader.absorb(frame)
                    yield frame
            finally:
                response.release()
                reader.settle()

        iterator = events()

        async def close() -> None:
            await iterator.aclose()  # type: ignore[attr-defined]
            response.close()

        return ChatStream(events=iterator, tally=reader.tally, close=close)
