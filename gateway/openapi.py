"""The gateway's OpenAPI 3.1 document, built from the config's model groups; GET /openapi.json.

Every route gateway/app.py registers is described here, the LiteLLM-style aliases without `/v1`
included, and tests/gateway/test_openapi.py checks both lists match and fuzzes the document
against a live gateway. Schemas live in openapi_schemas.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.openapi_schemas import Schema, component_schemas
from gateway.state import GatewayState
from meterline import __version__

# Why each error status happens; errors.py, routing/failures.py and keys/admin.py are the source.
WHY = {
    400: "Malformed JSON, a missing required field or a field of the wrong type; or the provider's 400.",
    401: "No key, or one the gateway does not know.",
    403: "The agent may not use this model group; on /admin, the admin API is off (no master key).",
    404: "Unknown model group, agent or key; or the provider's 404.",
    409: "The agent exists already, or the key is not in a state that allows the change.",
    413: "The body is over the gateway's limit (default 10 MiB).",
    429: (
        "The provider's rate limit or the agent's quota; Retry-After says when to retry, and the "
        "x-ratelimit-* headers name the refusing limit. `request_exceeds_limit`: the request alone is "
        "larger than the limit, so no Retry-After."
    ),
    502: "The provider failed or refused the gateway's credentials, or the gateway could not complete the request.",
    503: "The gateway is still starting; or the provider is overloaded.",
    504: "The provider timed out.",
}
MODEL_ERRORS = (400, 401, 403, 404, 413, 429, 502, 503, 504)
ADMIN_ERRORS = (400, 401, 403, 404, 409, 503)
DEFAULT_ERROR = "Any other provider status is kept, with the same error body."
RETRY_AFTER: Schema = {
    "description": "Seconds to wait before retrying; absent when waiting cannot help (request_exceeds_limit).",
    "schema": {"type": "integer", "minimum": 0},
}
REQUEST_ID: Schema = {"description": "The usage record's request id.", "schema": {"type": "string"}}
SSE_EVENT: Schema = {
    "description": "When the body has stream: true; each server-sent event, `data` as the provider sent it.",
    "type": "object",
    "required": ["data"],
    "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
}
BEARER = "bearer"
ANTHROPIC = "bearer or x-api-key"
SECURITY: dict[str | None, list[Schema]] = {
    BEARER: [{"bearer": []}],
    ANTHROPIC: [{"bearer": []}, {"apiKey": []}],
    None: [],
}
PATH_PARAM = re.compile(r"{(\w+)}")


@dataclass(frozen=True, slots=True)
class Operation:
    path: str
    method: str
    operation_id: str
    answer: str
    """A component schema name; "" for the two non-JSON-schema answers (metrics, this document)."""
    request: str | None = None
    auth: str | None = None
    streams: bool = False
    errors: tuple[int, ...] = ()
    """Documented error statuses; LLM endpoints also document `default` (a kept provider status)."""
    body_required: bool = True
    created: bool = False
    """Answers 201."""
    aliased: bool = False
    """Also served without the /v1 prefix, as LiteLLM's proxy does."""


def _llm(
    path: str, operation_id: str, answer: str, request: str, streams: bool = True, auth: str = BEARER
) -> Operation:
    return Operation(path, "post", operation_id, answer, request, auth, streams, MODEL_ERRORS, aliased=True)


def _admin(path: str, method: str, operation_id: str, answer: str, request: str | None = None) -> Operation:
    return Operation(path, method, operation_id, answer, request, BEARER, errors=ADMIN_ERRORS, body_required=False)


OPERATIONS = (
    _llm("/v1/chat/completions", "createChatCompletion", "ChatCompletion", "ChatCompletionRequest"),
    _llm("/v1/completions", "createCompletion", "Completion", "CompletionRequest"),
    _llm("/v1/embeddings", "createEmbedding", "EmbeddingList", "EmbeddingRequest", streams=False),
    _llm("/v1/responses", "createResponse", "Response", "ResponseRequest"),
    _llm("/v1/messages", "createMessage", "Message", "MessageRequest", auth=ANTHROPIC),
    Operation(
        "/v1/messages/count_tokens",
        "post",
        "countMessageTokens",
        "MessageTokensCount",
        "MessageCountRequest",
        ANTHROPIC,
        errors=(400, 401, 403, 404, 413, 503),
        aliased=True,
    ),
    Operation("/v1/models", "get", "listModels", "ModelList", auth=BEARER, errors=(401,), aliased=True),
    Operation("/health/liveliness", "get", "liveliness", "Liveliness"),
    Operation("/health/readiness", "get", "readiness", "Readiness"),
    Operation("/metrics", "get", "metrics", ""),
    Operation("/openapi.json", "get", "openapi", ""),
    Operation(
        "/v1/auth/token",
        "post",
        "issueToken",
        "Token",
        "TokenRequest",
        BEARER,
        errors=(400, 401, 503),
        body_required=False,
    ),
    _admin("/admin/agents", "get", "listAgents", "AgentList"),
    Operation(
        "/admin/agents", "post", "createAgent", "Agent", "AgentCreate", BEARER, errors=ADMIN_ERRORS, created=True
    ),
    _admin("/admin/agents/{agent_id}", "get", "getAgent", "Agent"),
    _admin("/admin/agents/{agent_id}", "patch", "updateAgent", "Agent", "AgentPatch"),
    _admin("/admin/agents/{agent_id}", "delete", "deleteAgent", "Deleted"),
    _admin("/admin/keys", "get", "listKeys", "KeyList"),
    Operation("/admin/keys", "post", "createKey", "NewKey", "KeyCreate", BEARER, errors=ADMIN_ERRORS, created=True),
    _admin("/admin/keys/{key_id}/rotate", "post", "rotateKey", "RotatedKey", "KeyRotate"),
    _admin("/admin/keys/{key_id}/revoke", "post", "revokeKey", "Key"),
)


def _json(schema: str) -> Schema:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _error(description: str, schema: str, status: int | None) -> Schema:
    headers = {"x-request-id": REQUEST_ID}
    if status == 429:
        headers["Retry-After"] = RETRY_AFTER
    return {"description": description, "headers": headers, "content": _json(schema)}


def _answer(op: Operation) -> Schema:
    if op.operation_id == "metrics":
        return {"description": "Prometheus text exposition format.", "content": {"text/plain": {"schema": {}}}}
    if op.operation_id == "openapi":
        return {"description": "This document.", "content": {"application/json": {"schema": {"type": "object"}}}}
    content = _json(op.answer)
    if op.streams:
        content["text/event-stream"] = {"schema": SSE_EVENT}
    relayed = op.errors == MODEL_ERRORS and op.answer != "ModelList"
    return {"description": "The provider's answer, relayed as it is." if relayed else "OK", "content": content}


def _responses(op: Operation) -> Schema:
    responses: Schema = {"201" if op.created else "200": _answer(op)}
    error = "AnthropicError" if op.auth == ANTHROPIC else "Error"
    for status in op.errors:
        responses[str(status)] = _error(WHY[status], error, status)
    if op.errors == MODEL_ERRORS:
        responses["default"] = _error(DEFAULT_ERROR, error, None)
    if op.operation_id == "readiness":
        responses["503"] = {"description": "Still starting.", "content": _json("Readiness")}
    return responses


def _operation(op: Operation, operation_id: str) -> Schema:
    security = SECURITY[op.auth]
    operation: Schema = {"operationId": operation_id, "security": security, "responses": _responses(op)}
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in PATH_PARAM.findall(op.path)
    ]
    if op.operation_id == "listKeys":
        parameters.append({"name": "agent_id", "in": "query", "schema": {"type": "string"}})
    if parameters:
        operation["parameters"] = parameters
    if op.request is not None:
        operation["requestBody"] = {"required": op.body_required, "content": _json(op.request)}
    return operation


def openapi_document(model_groups: list[str]) -> dict[str, Any]:
    """The document for a gateway serving `model_groups`; they are the `model` enum of every body."""
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op, op.operation_id)
        if op.aliased:
            alias = op.path.removeprefix("/v1")
            paths[alias] = {op.method: {**_operation(op, f"{op.operation_id}Unversioned"), "x-alias-of": op.path}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Meterline gateway",
            "version": __version__,
            "description": "OpenAI- and Anthropic-compatible LLM gateway; every request is metered and priced.",
        },
        "paths": paths,
        "components": {
            "schemas": component_schemas(model_groups),
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "description": "An agent key (/admin: the master key)."},
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key", "description": "An agent key."},
            },
        },
    }


async def openapi_json(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    return JSONResponse(openapi_document(state.config.model_groups()))
