"""Direct forward to providers that speak OpenAI's protocol: inject the key, keep the body,
parse only what the ledger needs. No LiteLLM on this path."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from gateway.chat_request import ChatRequest
from gateway.json_codec import dumps, loads
from gateway.providers.h1 import Response
from gateway.providers.http import body_line_batches, post_bytes, read_json, stream_error
from gateway.providers.results import ChatResponse, ChatStream, StreamTally
from gateway.providers.session import SessionOwner
from gateway.providers.sse import DONE, absorb_chunk, sse
from gateway.routing.deployments import Deployment
from gateway.token_usage import from_usage_block

_LEDGER_MARKER = re.compile(rb'"usage": ?\{|"finish_reason": ?"')


def _event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def _carries_ledger_data(payload: bytes) -> bool:
    """A chunk with usage or a finish reason; substring tests are far cheaper than parsing every chunk."""
    return _LEDGER_MARKER.search(payload) is not None


class OpenAIDirect(SessionOwner):
    def _payload(self, deployment: Deployment, request: ChatRequest) -> bytes:
        body: dict[str, Any] = {"model": deployment.model, "messages": request.messages, **request.params}
        if request.stream:
            body["stream"] = True
            body["stream_options"] = {**request.stream_options, "include_usage": True}
        return dumps(body)

    async def chat(self, deployment: Deployment, request: ChatRequest) -> ChatResponse | ChatStream:
        headers = {"Content-Type": "application/json"}
        if deployment.api_key is not None:
            headers["Authorization"] = f"Bearer {deployment.api_key.reveal()}"
        url = f"{deployment.api_base}/chat/completions"
        response = await post_bytes(self.client, url, self._payload(deployment, request), headers, deployment)
        if request.stream:
            return self._stream(response, request.client_wants_usage, deployment)
        body, data = await read_json(response, deployment)
        choices = data.get("choices") or []
        usage = from_usage_block(data.get("usage"))
        return ChatResponse(
            body=body,
            usage=usage,
            response_id=data.get("id"),
            finish_reasons=tuple(str(c["finish_reason"]) for c in choices if c.get("finish_reason")),
            texts=[] if usage else [str((c.get("message") or {}).get("content") or "") for c in choices],
        )

    def _stream(self, response: Response, client_wants_usage: bool, deployment: Deployment) -> ChatStream:
        tally = StreamTally()
        unparsed: list[bytes] = []

        def count_unparsed() -> None:
            # No usage from the provider: the gateway counts, so it needs every text.
            if tally.usage is None:
                for payload in unparsed:
                    for choice in loads(payload).get("choices") or []:
                        if isinstance(content := (choice.get("delta") or {}).get("content"), str):
                            tally.texts.append(content)
            unparsed.clear()

        async def events() -> AsyncIterator[bytes]:
            # Events that arrived together leave together: one send (one syscall) per network read,
            # never held back waiting for more.
            first = True
            done = False
            try:
                async for lines in body_line_batches(response, deployment):
                    out: list[bytes] = []
                    for raw in lines:
                        line = raw.strip()
                        if not line.startswith(b"data:"):
                            continue
                        payload = line[5:].strip()
                        if payload == b"[DONE]":
                            done = True
                            break
                        if b'"error"' in payload and (failure := stream_error(payload, deployment)) is not None:
                            if out:
                                yield b"".join(out)
                            raise failure
                        # Parse only the chunks that carry what the ledger needs: the first (its id),
                        # finish reasons and usage. The rest pass through as received.
                        if first or _carries_ledger_data(payload):
                            first = False
                            data = loads(payload)
                            had_usage = "usage" in data
                            chunk = absorb_chunk(data, tally, client_wants_usage)
                            if chunk is not None:
                                out.append(sse(chunk) if had_usage and "usage" not in chunk else _event(payload))
                        else:
                            unparsed.append(payload)
                            out.append(_event(payload))
                    if done:
                        count_unparsed()
                        out.append(DONE)
                        yield b"".join(out)
                        return
                    if out:
                        yield b"".join(out)
                count_unparsed()
                yield DONE
            finally:
                response.release()
                count_unparsed()

        iterator = events()

        async def close() -> None:
            await iterator.aclose()  # type: ignore[attr-defined]
            response.close()

        return ChatStream(events=iterator, tally=tally, close=close)
