"""The provider side: deployments, the router, and the two paths that reach providers."""

from __future__ import annotations

import logging

from gateway.chat_request import ChatRequest
from gateway.endpoint_request import EndpointRequest
from gateway.pricing import PriceBook
from gateway.providers.anthropic_direct import AnthropicDirect
from gateway.providers.demo import DemoProvider
from gateway.providers.litellm_endpoints import LiteLLMEndpoints
from gateway.providers.litellm_translate import LiteLLMTranslate
from gateway.providers.openai_direct import OpenAIDirect
from gateway.providers.openai_endpoints import OpenAIEndpoints
from gateway.providers.results import ChatResponse, ChatStream
from gateway.routing.deployments import Deployment, build_deployments
from gateway.routing.router import Routed, Router, RoutingPolicy
from meterline.config import MeterlineConfig
from meterline.secrets import SecretRegistry

log = logging.getLogger(__name__)


class Upstream:
    def __init__(self, config: MeterlineConfig, secrets: SecretRegistry | None = None) -> None:
        self.deployments = build_deployments(config, secrets)
        self.prices = PriceBook()
        policy = RoutingPolicy.from_settings(config.router_settings, config.litellm_settings)
        self.router = Router(self.deployments, policy, self.prices)
        self.direct = OpenAIDirect()
        self.endpoints = OpenAIEndpoints()
        self.anthropic = AnthropicDirect()
        self.demo = DemoProvider()
        # Imports LiteLLM on first use only (a direct deployment asked for /v1/messages, say).
        self.translated = LiteLLMEndpoints()
        # LiteLLM is imported (seconds) only when some deployment needs its translation.
        self.translate = LiteLLMTranslate() if any(d.path == "litellm" for d in self.deployments) else None
        if self.router.strategy != policy.strategy:
            log.warning("routing_strategy %r is served as %r", policy.strategy, self.router.strategy)

    async def start(self) -> None:
        await self.direct.start()
        await self.endpoints.start()
        await self.anthropic.start()
        if self.translate is not None:
            await self.translate.start()
        paths = [d.path for d in self.deployments]
        log.info(
            "upstream: %d deployments direct, %d demo, %d via LiteLLM",
            paths.count("direct"),
            paths.count("demo"),
            paths.count("litellm"),
        )

    async def close(self) -> None:
        await self.direct.close()
        await self.endpoints.close()
        await self.anthropic.close()
        await self.translated.close()
        if self.translate is not None:
            await self.translate.close()

    @property
    def model_groups(self) -> list[str]:
        return self.router.groups

    def has_group(self, name: str) -> bool:
        return self.router.has_group(name)

    def _provider(self, deployment: Deployment) -> OpenAIDirect | LiteLLMTranslate | DemoProvider:
        if deployment.path == "demo":
            return self.demo
        if deployment.direct or self.translate is None:
            return self.direct
        return self.translate

    async def chat(self, request: ChatRequest) -> Routed[ChatResponse | ChatStream]:
        async def attempt(deployment: Deployment) -> ChatResponse | ChatStream:
            return await self._provider(deployment).chat(deployment, request)

        return await self.router.run(request.model, attempt)

    def _endpoints(self, deployment: Deployment) -> OpenAIEndpoints | LiteLLMEndpoints | DemoProvider:
        if deployment.path == "demo":
            return self.demo
        return self.endpoints if deployment.direct else self.translated

    async def completions(self, request: EndpointRequest) -> Routed[ChatResponse | ChatStream]:
        async def attempt(deployment: Deployment) -> ChatResponse | ChatStream:
            return await self._endpoints(deployment).completions(deployment, request)

        return await self.router.run(request.model, attempt)

    async def embeddings(self, request: EndpointRequest) -> Routed[ChatResponse]:
        async def attempt(deployment: Deployment) -> ChatResponse:
            return await self._endpoints(deployment).embeddings(deployment, request)

        return await self.router.run(request.model, attempt)

    async def responses(self, request: EndpointRequest) -> Routed[ChatResponse | ChatStream]:
        async def attempt(deployment: Deployment) -> ChatResponse | ChatStream:
            return await self._endpoints(deployment).responses(deployment, request)

        return await self.router.run(request.model, attempt)

    async def messages(self, request: EndpointRequest) -> Routed[ChatResponse | ChatStream]:
        """Anthropic's format: forwarded as it is to `anthropic/` deployments, translated for the rest."""

        async def attempt(deployment: Deployment) -> ChatResponse | ChatStream:
            if deployment.path == "demo":
                return await self.demo.messages(deployment, request)
            if deployment.provider == "anthropic" and "mock_response" not in deployment.extra_params:
                return await self.anthropic.messages(deployment, request)
            return await self.translated.messages(deployment, request)

        return await self.router.run(request.model, attempt)
