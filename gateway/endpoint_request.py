"""Parse and validate the bodies of /v1/completions, /v1/embeddings, /v1/responses and /v1/messages.

Each endpoint keeps the client's body as it is (it is forwarded, not rebuilt); parsing checks
only what the gateway itself relies on: the model, the stream flag, and the fields without which
the provider would reject the request anyway.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.chat_request import parse_json_object
from gateway.errors import InvalidRequest
from gateway.output_bound import NO_OUTPUT, ONE_OUTPUT, OutputBound, completion_bound, largest_cap


@dataclass(frozen=True, slots=True)
class EndpointRequest:
    model: str
    body: dict[str, Any]
    """The client's body, model included; providers replace the model with the deployment's."""
    stream: bool = False
    client_wants_usage: bool = False
    """OpenAI streams only: the client asked for the usage chunk (stream_options.include_usage)."""
    headers: dict[str, str] = field(default_factory=dict)
    """Client headers a provider needs as they were sent (anthropic-version, anthropic-beta)."""
    output_bound: OutputBound = ONE_OUTPUT
    """What the provider may bill for output (quota reservation): gateway/output_bound.py."""

    def params(self, *consumed: str) -> dict[str, Any]:
        """The body without `model`, `stream`, `stream_options` and the named keys."""
        own = {"model", "stream", "stream_options", *consumed}
        return {k: v for k, v in self.body.items() if k not in own}


def _missing(name: str) -> InvalidRequest:
    return InvalidRequest(f"you must provide a {name} parameter", param=name, code="missing_required_parameter")


def _anthropic_missing(name: str) -> InvalidRequest:
    return InvalidRequest(f"{name}: Field required", param=name)


def _common(
    body: bytes, required: str, missing: Callable[[str], InvalidRequest] = _missing
) -> tuple[dict[str, Any], str, bool]:
    data = parse_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise missing("model")
    if data.get(required) is None:
        raise missing(required)
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    return data, model, stream


def _wants_usage(data: dict[str, Any]) -> bool:
    options = data.get("stream_options") or {}
    if not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    return bool(options.get("include_usage"))


def _is_tokens(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in value)


def _text_or_tokens(value: Any) -> bool:
    """A string, a list of strings, a token array, or a list of token arrays (OpenAI's prompt/input)."""
    if isinstance(value, str) or _is_tokens(value):
        return True
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) or _is_tokens(v) for v in value)


def parse_completion_request(body: bytes) -> EndpointRequest:
    data, model, stream = _common(body, "prompt")
    if not _text_or_tokens(data["prompt"]) or data["prompt"] == []:
        raise InvalidRequest(
            "'prompt' must be a string, a non-empty array of strings or an array of tokens", param="prompt"
        )
    return EndpointRequest(model, data, stream, _wants_usage(data), output_bound=completion_bound(data))


def parse_embedding_request(body: bytes) -> EndpointRequest:
    data, model, _ = _common(body, "input")
    value = data["input"]
    if not _text_or_tokens(value) or value in ("", []):
        raise InvalidRequest("'input' must be a non-empty string, array of strings or array of tokens", param="input")
    if data.get("stream"):
        raise InvalidRequest("embeddings cannot be streamed", param="stream")
    return EndpointRequest(model, data, output_bound=NO_OUTPUT)


def parse_response_request(body: bytes) -> EndpointRequest:
    data, model, stream = _common(body, "input")
    items = data["input"]
    if not isinstance(items, (str, list)):
        raise InvalidRequest("'input' must be a string or an array of input items", param="input")
    if isinstance(items, list):
        for index, item in enumerate(items):
            if not isinstance(item, dict):
                raise InvalidRequest(f"input[{index}] must be an input item object", param=f"input[{index}]")
    return EndpointRequest(model, data, stream, output_bound=OutputBound(1, largest_cap(data, "max_output_tokens")))


def parse_message_request(body: bytes, headers: dict[str, str]) -> EndpointRequest:
    """Anthropic's Messages request; errors name the field the way Anthropic's do."""
    data, model, stream = _common(body, "messages", _anthropic_missing)
    messages = data["messages"]
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("messages: must be a non-empty array of messages", param="messages")
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{index}.role: must be 'user' or 'assistant'", param=f"messages.{index}")
    max_tokens = data.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise InvalidRequest("max_tokens: Field required, a positive integer", param="max_tokens")
    return EndpointRequest(model, data, stream, headers=headers, output_bound=OutputBound(1, max_tokens))
