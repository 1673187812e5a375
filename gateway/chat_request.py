"""Parse and validate a /v1/chat/completions body into what the upstream call needs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.client_json import loads_client
from gateway.errors import InvalidRequest
from gateway.output_bound import ONE_OUTPUT, OutputBound, chat_bound

# Keys the gateway consumes itself; everything else passes through to the provider.
_OWN_KEYS = frozenset({"model", "messages", "stream", "stream_options"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    client_wants_usage: bool
    """The client asked for the final usage chunk (stream_options.include_usage)."""
    params: dict[str, Any]
    stream_options: dict[str, Any]
    output_bound: OutputBound = ONE_OUTPUT
    """What the provider may bill for output: `n` choices of the output cap (quota reservation)."""

    def answer_relevant_body(self) -> dict[str, Any]:
        """The request as it determines the answer (the response cache's key material)."""
        return {"model": self.model, "messages": self.messages, **self.params}


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body:
        raise InvalidRequest("Request body is empty; expected a JSON object.")
    data = loads_client(body)  # strict UTF-8, a depth limit, no lone surrogates: 400s
    if not isinstance(data, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    return data


def parse_chat_request(body: bytes) -> ChatRequest:
    data = parse_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter", param="model", code="missing_required_parameter")
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest(
            "'messages' must be a non-empty array of messages", param="messages", code="missing_required_parameter"
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise InvalidRequest(f"messages[{index}] must be an object with a 'role'", param=f"messages[{index}]")
        content = message.get("content")
        # OpenAI's message content: text, an array of content parts, or null (assistant tool calls).
        if content is not None and not isinstance(content, (str, list)):
            raise InvalidRequest(
                f"messages[{index}].content must be a string or an array of content parts",
                param=f"messages[{index}].content",
            )
        if isinstance(content, list) and not all(isinstance(part, dict) for part in content):
            raise InvalidRequest(f"messages[{index}].content parts must be objects", param=f"messages[{index}].content")
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    stream_options = data.get("stream_options") or {}
    if not isinstance(stream_options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    params = {k: v for k, v in data.items() if k not in _OWN_KEYS}
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        client_wants_usage=bool(stream_options.get("include_usage")),
        params=params,
        stream_options=stream_options,
        output_bound=chat_bound(data),
    )
