"""The bodies OpenAI sends, built from a request and a `MockBehaviour`; no HTTP here.

Each builder returns either the JSON bytes of a response or the list of encoded SSE events
of a stream, so the app can cache them byte for byte in fast mode.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from itertools import count
from typing import Any

from gateway.testing.behaviour import TOKENS_PER_MESSAGE, MockBehaviour, content_text, prompt_tokens, words
from gateway.testing.wire import dumps, pieces

_ids = count(1)
DONE = b"data: [DONE]\n\n"


def data_event(payload: dict[str, Any]) -> bytes:
    return b"data: " + dumps(payload) + b"\n\n"


def named_event(payload: dict[str, Any]) -> bytes:
    return b"event: " + str(payload["type"]).encode() + b"\ndata: " + dumps(payload) + b"\n\n"


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """The mock's embedding of a text: sha256 bytes scaled to [-1, 1) in steps of 1/128 (exact in float32)."""
    digest = hashlib.sha256(text.encode()).digest()
    while len(digest) < dimensions:
        digest += hashlib.sha256(digest).digest()
    return [(b - 128) / 128 for b in digest[:dimensions]]


def _tool_to_call(body: dict[str, Any]) -> str | None:
    """The function the mock calls: the named one, else the first; none without tools or with "none"."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice")
    if not tools or choice == "none":
        return None
    if isinstance(choice, dict):
        named = choice.get("function", {}).get("name") or choice.get("name")
        if isinstance(named, str):
            return named
    first = tools[0]
    name = first.get("function", {}).get("name") or first.get("name") or "tool"
    return str(name)


def _structured(body: dict[str, Any]) -> bool:
    fmt = body.get("response_format") or (body.get("text") or {}).get("format") or {}
    return fmt.get("type") in ("json_schema", "json_object")


def _logprobs(text: str, top: int) -> dict[str, Any]:
    content = [
        {
            "token": piece,
            "logprob": -0.5,
            "bytes": list(piece.encode()),
            "top_logprobs": [{"token": piece, "logprob": -0.5, "bytes": list(piece.encode())}] * top,
        }
        for piece in pieces(text)
    ]
    return {"content": content, "refusal": None}


def chat_usage(behaviour: MockBehaviour, prompt: int, completion: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": min(behaviour.cached_tokens, prompt), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def chat_completion(body: dict[str, Any], behaviour: MockBehaviour) -> bytes | list[bytes]:
    n = int(body.get("n") or 1)
    tool = _tool_to_call(body)
    text = behaviour.tool_arguments if tool else behaviour.json_reply if _structured(body) else behaviour.reply
    prompt = prompt_tokens(body.get("messages") or [])
    reasoning = behaviour.reasoning_tokens * n
    usage = chat_usage(behaviour, prompt, words(text) * n + reasoning, reasoning)
    top = int(body.get("top_logprobs") or 0)
    head = {"id": f"chatcmpl-mock-{next(_ids)}", "created": int(time.time()), "model": body["model"]}
    head["system_fingerprint"] = "fp_mock"
    if body.get("stream"):
        return _chat_stream(body, behaviour, head, n, tool, text, usage, top)
    choices = []
    for index in range(n):
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
        if tool:
            call = {"id": f"call_mock_{index}", "type": "function", "function": {"name": tool, "arguments": text}}
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [call]}
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": _logprobs(text, top) if body.get("logprobs") else None,
                "finish_reason": "tool_calls" if tool else "stop",
            }
        )
    result = {**head, "object": "chat.completion", "choices": choices, "service_tier": "default"}
    if not behaviour.omit_usage:
        result["usage"] = usage
    return dumps(result)


def _chat_stream(
    body: dict[str, Any],
    behaviour: MockBehaviour,
    head: dict[str, Any],
    n: int,
    tool: str | None,
    text: str,
    usage: dict[str, Any],
    top: int,
) -> list[bytes]:
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage")) and not behaviour.omit_usage
    base = {**head, "object": "chat.completion.chunk"}
    if wants_usage:
        base["usage"] = None

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None, logprobs: Any = None) -> bytes:
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        return data_event({**base, "choices": [choice]})

    events: list[bytes] = []
    for index in range(n):
        if tool:
            call = {"index": 0, "id": f"call_mock_{index}", "type": "function"}
            opening = {**call, "function": {"name": tool, "arguments": ""}}
            events.append(chunk(index, {"role": "assistant", "content": None, "tool_calls": [opening]}))
            for piece in pieces(text):
                events.append(chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        else:
            events.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
            for piece in pieces(text):
                logprobs = _logprobs(piece, top) if body.get("logprobs") else None
                events.append(chunk(index, {"content": piece}, logprobs=logprobs))
        events.append(chunk(index, {}, "tool_calls" if tool else "stop"))
    if wants_usage:
        events.append(data_event({**base, "choices": [], "usage": usage}))
    events.append(DONE)
    return events


def completion(body: dict[str, Any], behaviour: MockBehaviour) -> bytes | list[bytes]:
    """Legacy /v1/completions: prompt tokens are the words of the prompt(s), no per-message
    overhead; `n` choices per prompt, `best_of` (at least `n`) billed per prompt."""
    prompts = body.get("prompt")
    # A prompt is a string, strings, a token array or token arrays (one token per integer).
    items = prompts if isinstance(prompts, list) else [prompts or ""]
    prompt = sum(
        words(p) if isinstance(p, str) else len(p) if isinstance(p, list) else 1 if isinstance(p, int) else 0
        for p in items
    )
    n = int(body.get("n") or 1)
    text = behaviour.reply
    # OpenAI generates `best_of` candidates (at least `n`) for each prompt of a batch and bills
    # them all; it returns `n` choices per prompt.
    batch = len(items) if isinstance(prompts, list) and prompts and not isinstance(prompts[0], int) else 1
    completion_tokens = words(text) * max(n, int(body.get("best_of") or 1)) * batch
    usage = {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
    }
    head = {"id": f"cmpl-mock-{next(_ids)}", "object": "text_completion", "created": int(time.time())}
    head["model"] = body["model"]
    if not body.get("stream"):
        choices = [{"text": text, "index": i, "logprobs": None, "finish_reason": "stop"} for i in range(n * batch)]
        result = {**head, "choices": choices, "system_fingerprint": "fp_mock"}
        if not behaviour.omit_usage:
            result["usage"] = usage
        return dumps(result)
    events = []
    for index in range(n * batch):
        for piece in pieces(text):
            choice = {"text": piece, "index": index, "logprobs": None, "finish_reason": None}
            events.append(data_event({**head, "choices": [choice]}))
        events.append(data_event({**head, "choices": [{"text": "", "index": index, "finish_reason": "stop"}]}))
    if (body.get("stream_options") or {}).get("include_usage") and not behaviour.omit_usage:
        events.append(data_event({**head, "choices": [], "usage": usage}))
    events.append(DONE)
    return events


def embeddings(body: dict[str, Any], behaviour: MockBehaviour) -> bytes:
    """Prompt tokens: words of each input string, or the length of each token array."""
    raw = body.get("input")
    inputs: list[Any] = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dimensions = int(body.get("dimensions") or behaviour.embedding_dimensions)
    data, tokens = [], 0
    for index, item in enumerate(inputs):
        text = item if isinstance(item, str) else " ".join(str(t) for t in item or [])
        tokens += words(item) if isinstance(item, str) else len(item or [])
        vector: Any = embedding_vector(text, dimensions)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    result: dict[str, Any] = {"object": "list", "data": data, "model": body["model"]}
    if not behaviour.omit_usage:
        result["usage"] = {"prompt_tokens": tokens, "total_tokens": tokens}
    return dumps(result)


def _responses_input_tokens(body: dict[str, Any]) -> int:
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    total = prompt_tokens([], system=body.get("instructions"))
    for item in items or []:
        if "role" in item:
            total += TOKENS_PER_MESSAGE + words(content_text(item.get("content")))
        else:  # function_call_output and the like
            total += TOKENS_PER_MESSAGE + words(str(item.get("output") or ""))
    return total


def response(body: dict[str, Any], behaviour: MockBehaviour) -> bytes | list[bytes]:
    """The Responses API (/v1/responses): one message, or one function call when tools are given."""
    tool = _tool_to_call(body)
    text = behaviour.tool_arguments if tool else behaviour.json_reply if _structured(body) else behaviour.reply
    number = next(_ids)
    prompt, reasoning = _responses_input_tokens(body), behaviour.reasoning_tokens
    output_tokens = words(text) + reasoning
    usage = {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": min(behaviour.cached_tokens, prompt)},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": prompt + output_tokens,
    }
    item: dict[str, Any]
    if tool:
        item = {"id": f"fc_mock_{number}", "type": "function_call", "status": "completed"}
        item |= {"call_id": f"call_mock_{number}", "name": tool, "arguments": text}
    else:
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = {"id": f"msg_mock_{number}", "type": "message", "status": "completed", "role": "assistant"}
        item["content"] = [part]
    final = {
        "id": f"resp_mock_{number}",
        "object": "response",
        "created_at": int(time.time()),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": [item],
        "parallel_tool_calls": True,
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": True,
        "temperature": 1.0,
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": body.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": None if behaviour.omit_usage else usage,
        "user": None,
        "metadata": {},
    }
    if not body.get("stream"):
        return dumps(final)
    return _response_events(final, item, text)


def _response_events(final: dict[str, Any], item: dict[str, Any], text: str) -> list[bytes]:
    sequence = count()
    started = {**final, "status": "in_progress", "output": [], "usage": None}
    where = {"item_id": item["id"], "output_index": 0}

    def event(kind: str, **fields: Any) -> bytes:
        return named_event({"type": kind, "sequence_number": next(sequence), **fields})

    events = [event("response.created", response=started), event("response.in_progress", response=started)]
    if item["type"] == "function_call":
        events.append(event("response.output_item.added", output_index=0, item={**item, "arguments": ""}))
        for piece in pieces(text):
            events.append(event("response.function_call_arguments.delta", **where, delta=piece))
        events.append(event("response.function_call_arguments.done", **where, arguments=text))
    else:
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        at = {**where, "content_index": 0}
        events.append(event("response.output_item.added", output_index=0, item={**item, "content": []}))
        events.append(event("response.content_part.added", **at, part=empty))
        for piece in pieces(text):
            events.append(event("response.output_text.delta", **at, delta=piece, logprobs=[]))
        events.append(event("response.output_text.done", **at, text=text, logprobs=[]))
        events.append(event("response.content_part.done", **at, part=item["content"][0]))
    events.append(event("response.output_item.done", output_index=0, item=item))
    events.append(event("response.completed", response=final))
    return events
