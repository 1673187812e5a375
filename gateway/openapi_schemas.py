"""The JSON Schemas of gateway/openapi.py: request bodies, answers and error bodies.

Request schemas say what the gateway itself checks (endpoint_request.py, chat_request.py) plus
the provider parameters agents commonly send; every other property passes through to the
provider unchanged, so no body schema forbids additional properties. Answer schemas require
only the fields every provider's answer carries; the provider's body is relayed as it is.
"""

from __future__ import annotations

from typing import Any

from gateway.anthropic_errors import anthropic_error_type

Schema = dict[str, Any]

STRING: Schema = {"type": "string"}
NULLABLE_STRING: Schema = {"type": ["string", "null"]}
INTEGER: Schema = {"type": "integer"}
TOKENS: Schema = {"type": "array", "items": INTEGER}
TEXT_OR_TOKENS: Schema = {
    "description": "A string, an array of strings, an array of tokens or an array of token arrays.",
    "oneOf": [
        STRING,
        {"type": "array", "items": STRING, "minItems": 1},
        TOKENS,
        {"type": "array", "items": TOKENS, "minItems": 1},
    ],
}
CONTENT_PART: Schema = {"type": "object", "required": ["type"], "properties": {"type": STRING}}
CONTENT: Schema = {"oneOf": [STRING, {"type": "array", "items": CONTENT_PART}]}


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _request(required: list[str], properties: Schema) -> Schema:
    return {
        "type": "object",
        "required": ["model", *required],
        "properties": {"model": _ref("ModelGroup"), **properties},
        "additionalProperties": True,
    }


def answer(required: list[str], properties: Schema) -> Schema:
    return {"type": "object", "required": required, "properties": properties}


STREAM: Schema = {"type": ["boolean", "null"], "description": "Answer as server-sent events."}
STREAM_OPTIONS: Schema = {
    "type": ["object", "null"],
    "properties": {"include_usage": {"type": "boolean"}},
    "description": "include_usage: end the stream with a usage chunk. Usage is recorded either way.",
}
SAMPLING: Schema = {
    "temperature": {"type": "number", "minimum": 0, "maximum": 2},
    "top_p": {"type": "number", "minimum": 0, "maximum": 1},
    "seed": INTEGER,
    "user": STRING,
}

CHAT_MESSAGE: Schema = {
    "type": "object",
    "required": ["role"],
    "properties": {
        "role": {"type": "string", "enum": ["system", "developer", "user", "assistant", "tool"]},
        "content": {"oneOf": [CONTENT, {"type": "null"}]},
        "name": STRING,
        "tool_call_id": STRING,
    },
}
ANTHROPIC_MESSAGE: Schema = {
    "type": "object",
    "required": ["role", "content"],
    "properties": {"role": {"type": "string", "enum": ["user", "assistant"]}, "content": CONTENT},
}

REQUESTS: dict[str, Schema] = {
    "ChatCompletionRequest": _request(
        ["messages"],
        {
            "messages": {"type": "array", "items": CHAT_MESSAGE, "minItems": 1},
            "stream": STREAM,
            "stream_options": STREAM_OPTIONS,
            "max_tokens": {"type": "integer", "minimum": 1},
            **SAMPLING,
        },
    ),
    "CompletionRequest": _request(
        ["prompt"],
        {
            "prompt": TEXT_OR_TOKENS,
            "stream": STREAM,
            "stream_options": STREAM_OPTIONS,
            "max_tokens": {"type": "integer", "minimum": 1},
            **SAMPLING,
        },
    ),
    "EmbeddingRequest": _request(
        ["input"],
        {
            "input": TEXT_OR_TOKENS,
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1, "maximum": 3072},  # OpenAI's largest model
            "stream": {"type": ["boolean", "null"], "enum": [False, None], "description": "Never true."},
            "user": STRING,
        },
    ),
    "ResponseRequest": _request(
        ["input"],
        {
            "input": {"oneOf": [STRING, {"type": "array", "items": {"type": "object"}}]},
            "instructions": STRING,
            "stream": STREAM,
            "max_output_tokens": {"type": "integer", "minimum": 1},
            **SAMPLING,
        },
    ),
    "MessageRequest": _request(
        ["messages", "max_tokens"],
        {
            "messages": {"type": "array", "items": ANTHROPIC_MESSAGE, "minItems": 1},
            "max_tokens": {"type": "integer", "minimum": 1},
            "system": CONTENT,
            "stream": STREAM,
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
        },
    ),
    "MessageCountRequest": _request(
        ["messages"],
        {"messages": {"type": "array", "items": ANTHROPIC_MESSAGE, "minItems": 1}, "system": CONTENT},
    ),
}

USAGE: Schema = {"type": "object"}
ANSWERS: dict[str, Schema] = {
    "ChatCompletion": answer(
        ["id", "object", "created", "model", "choices"],
        {
            "id": STRING,
            "object": {"const": "chat.completion"},
            "created": INTEGER,
            "model": STRING,
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": USAGE,
        },
    ),
    "Completion": answer(
        ["id", "object", "created", "model", "choices"],
        {
            "id": STRING,
            "object": {"const": "text_completion"},
            "created": INTEGER,
            "model": STRING,
            "choices": {"type": "array", "items": {"type": "object"}},
            "usage": USAGE,
        },
    ),
    "EmbeddingList": answer(
        ["object", "data", "model"],
        {
            "object": {"const": "list"},
            "model": STRING,
            "usage": USAGE,
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "embedding"],
                    "properties": {
                        "index": INTEGER,
                        "embedding": {"oneOf": [{"type": "array", "items": {"type": "number"}}, STRING]},
                    },
                },
            },
        },
    ),
    "Response": answer(
        ["id", "object", "model", "output"],
        {
            "id": STRING,
            "object": {"const": "response"},
            "model": STRING,
            "status": STRING,
            "output": {"type": "array", "items": {"type": "object"}},
            "usage": USAGE,
        },
    ),
    "Message": answer(
        ["id", "type", "role", "content", "model", "usage"],
        {
            "id": STRING,
            "type": {"const": "message"},
            "role": {"const": "assistant"},
            "model": STRING,
            "content": {"type": "array", "items": CONTENT_PART},
            "stop_reason": NULLABLE_STRING,
            "usage": USAGE,
        },
    ),
    "MessageTokensCount": {
        **answer(["input_tokens"], {"input_tokens": {"type": "integer", "minimum": 0}}),
        "description": "Header x-meterline-token-count: `provider` (the provider counted) or `estimated` "
        "(the gateway's tokenizer). Not billed.",
    },
    "ModelList": answer(
        ["object", "data"],
        {
            "object": {"const": "list"},
            "data": {
                "type": "array",
                "items": answer(
                    ["id", "object", "created", "owned_by"],
                    {"id": STRING, "object": {"const": "model"}, "created": INTEGER, "owned_by": STRING},
                ),
            },
        },
    ),
    "Liveliness": answer(["status"], {"status": {"const": "alive"}}),
    "Readiness": answer(
        ["status", "model_groups", "agents", "telemetry_pending"],
        {
            "status": {"enum": ["ready", "starting"]},
            "model_groups": {"type": "array", "items": STRING},
            "agents": INTEGER,
            "telemetry_pending": INTEGER,
        },
    ),
}

ANTHROPIC_ERROR_TYPES = sorted({anthropic_error_type(status) for status in range(400, 600)})
ERRORS: dict[str, Schema] = {
    "Error": {
        "description": "OpenAI's error object (gateway/errors.py).",
        **answer(
            ["error"],
            {
                "error": answer(
                    ["message", "type", "param", "code"],
                    {"message": STRING, "type": STRING, "param": NULLABLE_STRING, "code": NULLABLE_STRING},
                )
            },
        ),
    },
    "AnthropicError": {
        "description": "Anthropic's error object (gateway/anthropic_errors.py).",
        **answer(
            ["type", "error"],
            {
                "type": {"const": "error"},
                "error": answer(
                    ["type", "message"],
                    {"type": {"enum": ANTHROPIC_ERROR_TYPES}, "message": STRING},
                ),
            },
        ),
    },
}


def component_schemas(model_groups: list[str]) -> dict[str, Schema]:
    model_group: Schema = {"type": "string", "description": "A model group from the gateway's model_list."}
    if model_groups:
        model_group["enum"] = list(model_groups)
    from gateway.openapi_admin import admin_schemas  # a cycle otherwise: it uses this module's helpers

    return {"ModelGroup": model_group, **REQUESTS, **ANSWERS, **admin_schemas(), **ERRORS}
