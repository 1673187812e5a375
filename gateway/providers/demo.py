"""The demo provider: a deployment with `mock_response` answered in process, in each endpoint's
real wire format (OpenAI's chat, completions, embeddings and Responses; Anthropic's Messages),
streamed or not.

Replies are the deployment's `mock_response` text, cut at whole words to the request's output cap
(`max_tokens`, `max_completion_tokens`, `max_output_tokens`) with the provider's "length" finish
reason where it is smaller; embeddings are deterministic vectors of the
text (float or base64, `DIMENSIONS` unless the request asks for `dimensions`). Usage is what the
gateway's tokenizer counts (`request_tokens.py`, `tokens.py`) for the request's input and the
reply, reported as a provider reports it, so the client, the ledger and the bill agree; the
model is the deployment's (priced from LiteLLM's table). `model_info.meterline_upstream:
litellm` sends such a deployment to LiteLLM's own `mock_response` instead.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from collections.abc import AsyncIterator
from itertools import count
from typing import Any

from gateway.chat_request import ChatRequest
from gateway.endpoint_request import EndpointRequest
from gateway.json_codec import dumps
from gateway.providers.named_events import AnthropicTally, ResponsesTally, named_frame
from gateway.providers.openai_endpoints import absorb_completion_chunk
from gateway.providers.results import ChatResponse, ChatStream, StreamTally
from gateway.providers.sse import DONE, absorb_chunk, sse
from gateway.request_tokens import messages_input_tokens, prompt_tokens, responses_input_tokens
from gateway.routing.deployments import Deployment
from gateway.token_usage import TokenUsage, from_anthropic_usage, from_responses_usage, from_usage_block
from gateway.tokens import count_messages_off_loop, count_text, off_loop, text_chars

DIMENSIONS = 256
"""The demo's embedding size when a request does not ask for `dimensions`."""
MAX_DIMENSIONS = 3072

_ids = count(1)


def _words(text: str) -> list[str]:
    """Stream deltas: the text cut before each space; joined they give it back."""
    pieces = [f" {w}" for w in text.split(" ")]
    pieces[0] = pieces[0][1:]
    return [p for p in pieces if p]


def capped_reply(text: str, cap: Any) -> tuple[str, int, bool]:
    """The reply cut at the request's output cap (whole words, as counted by the gateway's
    tokenizer), its tokens, and whether it was cut; a cap that is not a positive integer is none."""
    tokens = count_text(text)
    if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1 or tokens <= cap:
        return text, tokens, False
    kept = ""
    for piece in _words(text):
        if count_text(kept + piece) > cap:
            break
        kept += piece
    return kept, count_text(kept), True


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """sha256 bytes of the text scaled to [-1, 1) in steps of 1/128, so float32 holds them exactly."""
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dimensions:
        digest += hashlib.sha256(digest).digest()
    return [(b - 128) / 128 for b in digest[:dimensions]]


def _single(events: list[bytes]) -> AsyncIterator[bytes]:
    async def relay() -> AsyncIterator[bytes]:
        for event in events:
            yield event

    return relay()


def _stream(events: list[bytes], tally: StreamTally) -> ChatStream:
    iterator = _single(events)

    async def close() -> None:
        await iterator.aclose()  # type: ignore[attr-defined]

    return ChatStream(events=iterator, tally=tally, close=close)


class DemoProvider:
    """Same methods as the other provider paths; nothing to open or close."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def chat(self, deployment: Deployment, request: ChatRequest) -> ChatResponse | ChatStream:
        cap = request.params.get("max_completion_tokens") or request.params.get("max_tokens")
        text, tokens, cut = capped_reply(deployment.demo_reply or "", cap)
        finish = "length" if cut else "stop"
        n = request.params.get("n")
        n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
        prompt = await count_messages_off_loop(request.messages)
        completion = tokens * n
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        response_id = f"chatcmpl-demo-{next(_ids)}"
        head = {"id": response_id, "created": int(time.time()), "model": deployment.model}
        if not request.stream:
            message = {"role": "assistant", "content": text, "refusal": None}
            choices = [{"index": i, "message": message, "logprobs": None, "finish_reason": finish} for i in range(n)]
            body = {**head, "object": "chat.completion", "choices": choices, "usage": usage}
            return ChatResponse(dumps(body), from_usage_block(usage), response_id, (finish,) * n)
        tally = StreamTally()
        base = {**head, "object": "chat.completion.chunk"}
        chunks: list[dict[str, Any]] = []
        for index in range(n):
            deltas = [{"role": "assistant", "content": ""}] + [{"content": w} for w in _words(text)]
            chunks += [{**base, "choices": [{"index": index, "delta": d, "finish_reason": None}]} for d in deltas]
            chunks.append({**base, "choices": [{"index": index, "delta": {}, "finish_reason": finish}]})
        chunks.append({**base, "choices": [], "usage": usage})
        events = [sse(out) for c in chunks if (out := absorb_chunk(c, tally, request.client_wants_usage))]
        return _stream([*events, DONE], tally)

    async def completions(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        text, tokens, cut = capped_reply(deployment.demo_reply or "", request.body.get("max_tokens"))
        finish = "length" if cut else "stop"
        raw = request.body["prompt"]
        batch = len(raw) if isinstance(raw, list) and raw and not isinstance(raw[0], int) else 1
        n = request.body.get("n")
        choices = batch * (n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1)
        prompt, completion = await off_loop(lambda: prompt_tokens(raw), text_chars(raw)), tokens * choices
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
        response_id = f"cmpl-demo-{next(_ids)}"
        head = {"id": response_id, "object": "text_completion", "created": int(time.time()), "model": deployment.model}
        if not request.stream:
            body = {**head, "choices": [_text_choice(i, text, finish) for i in range(choices)], "usage": usage}
            return ChatResponse(dumps(body), from_usage_block(usage), response_id, (finish,) * choices)
        tally = StreamTally()
        chunks: list[dict[str, Any]] = []
        for index in range(choices):
            chunks += [{**head, "choices": [_text_choice(index, w, None)]} for w in _words(text)]
            chunks.append({**head, "choices": [_text_choice(index, "", finish)]})
        chunks.append({**head, "choices": [], "usage": usage})
        wants = request.client_wants_usage
        events = [sse(out) for c in chunks if (out := absorb_completion_chunk(c, tally, wants))]
        return _stream([*events, DONE], tally)

    async def embeddings(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse:
        raw = request.body["input"]
        inputs: list[Any] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
        asked = request.body.get("dimensions")
        ok = isinstance(asked, int) and not isinstance(asked, bool) and 0 < asked <= MAX_DIMENSIONS
        dimensions = asked if ok and isinstance(asked, int) else DIMENSIONS
        data = []
        for index, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            vector: list[float] | str = embedding_vector(text, dimensions)
            if request.body.get("encoding_format") == "base64":
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = await off_loop(lambda: prompt_tokens(raw), text_chars(raw))
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        body = {"object": "list", "data": data, "model": deployment.model, "usage": usage}
        return ChatResponse(dumps(body), TokenUsage(input_tokens=tokens, raw=dumps(usage).decode()))

    async def responses(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        text, output, cut = capped_reply(deployment.demo_reply or "", request.body.get("max_output_tokens"))
        status = "incomplete" if cut else "completed"
        number = next(_ids)
        prompt = await off_loop(lambda: responses_input_tokens(request.body), text_chars(request.body))
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": prompt + output,
        }
        part = {"type": "output_text", "text": text, "annotations": []}
        item: dict[str, Any] = {"id": f"msg_demo_{number}", "type": "message", "status": status}
        item |= {"role": "assistant", "content": [part]}
        final: dict[str, Any] = {
            "id": f"resp_demo_{number}",
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": request.body.get("instructions"),
            "max_output_tokens": request.body.get("max_output_tokens"),
            "model": deployment.model,
            "output": [item],
            "parallel_tool_calls": True,
            "previous_response_id": request.body.get("previous_response_id"),
            "temperature": 1.0,
            "text": {"format": {"type": "text"}},
            "tool_choice": "auto",
            "tools": [],
            "top_p": 1.0,
            "truncation": "disabled",
            "usage": usage,
            "metadata": {},
        }
        if not request.stream:
            return ChatResponse(dumps(final), from_responses_usage(usage), final["id"], (status,))
        sequence = count()

        def event(kind: str, **fields: Any) -> bytes:
            return named_frame({"type": kind, "sequence_number": next(sequence), **fields})

        started = {**final, "status": "in_progress", "output": [], "usage": None}
        at = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events = [
            event("response.created", response=started),
            event("response.in_progress", response=started),
            event("response.output_item.added", output_index=0, item={**item, "status": "in_progress", "content": []}),
            event("response.content_part.added", **at, part={**part, "text": ""}),
            *(event("response.output_text.delta", **at, delta=w) for w in _words(text)),
            event("response.output_text.done", **at, text=text),
            event("response.content_part.done", **at, part=part),
            event("response.output_item.done", output_index=0, item=item),
            event(f"response.{status}", response=final),
        ]
        reader = ResponsesTally()
        for frame in events:
            reader.absorb(frame)
        return _stream(events, reader.tally)

    async def messages(self, deployment: Deployment, request: EndpointRequest) -> ChatResponse | ChatStream:
        text, output, cut = capped_reply(deployment.demo_reply or "", request.body.get("max_tokens"))
        stop = "max_tokens" if cut else "end_turn"
        usage = {
            "input_tokens": await off_loop(lambda: messages_input_tokens(request.body), text_chars(request.body)),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output,
        }
        message: dict[str, Any] = {
            "id": f"msg_demo_{next(_ids)}",
            "type": "message",
            "role": "assistant",
            "model": deployment.model,
            "content": [{"type": "text", "text": text}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": usage,
        }
        if not request.stream:
            return ChatResponse(dumps(message), from_anthropic_usage(usage), message["id"], (stop,))
        started = {**message, "content": [], "stop_reason": None, "usage": {**usage, "output_tokens": 1}}
        closing = {"stop_reason": stop, "stop_sequence": None}
        events = [
            named_frame({"type": "message_start", "message": started}),
            named_frame({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            *(
                named_frame({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}})
                for w in _words(text)
            ),
            named_frame({"type": "content_block_stop", "index": 0}),
            named_frame({"type": "message_delta", "delta": closing, "usage": {"output_tokens": output}}),
            named_frame({"type": "message_stop"}),
        ]
        reader = AnthropicTally()
        for frame in events:
            reader.absorb(frame)
        return _stream(events, reader.tally)


def _text_choice(index: int, text: str, finish: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": None, "finish_reason": finish}
