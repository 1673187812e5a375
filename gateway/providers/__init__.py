"""The two ways a request reaches a provider, behind one small interface.

`openai_direct.OpenAIDirect` forwards OpenAI-protocol requests as they are (key injected,
body kept, only what the ledger needs parsed); `litellm_translate.LiteLLMTranslate` hands
everything else to LiteLLM's translation. `conformance` tests run the same cases through both.
"""

from __future__ import annotations

from typing import Protocol

from gateway.chat_request import ChatRequest
from gateway.providers.results import ChatResponse, ChatStream
from gateway.routing.deployments import Deployment


class ChatProvider(Protocol):
    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def chat(self, deployment: Deployment, request: ChatRequest) -> ChatResponse | ChatStream:
        """One attempt. Raises UpstreamFailure; for a stream, returns once the upstream accepted it."""
