"""The admin API's and /v1/auth/token's schemas for gateway/openapi.py.

Request bodies come from the pydantic models the routes validate with, so they cannot drift;
answers mirror gateway/keys/admin.py's views.
"""

from __future__ import annotations

from pydantic import BaseModel

from gateway.openapi_schemas import INTEGER, NULLABLE_STRING, STRING, Schema, answer
from gateway.routes.admin import AgentCreate, AgentPatch, KeyCreate, KeyRotate
from gateway.routes.auth_token import TokenRequest

NULLABLE_NUMBER: Schema = {"type": ["number", "null"]}
AGENT = answer(
    ["id", "team", "tags", "limits", "source", "created"],
    {
        "id": STRING,
        "team": STRING,
        "project": NULLABLE_STRING,
        "tags": {"type": "object"},
        "models": {"type": ["array", "null"]},
        "limits": {"type": "object"},
        "source": STRING,
        "created": NULLABLE_NUMBER,
    },
)
KEY_FIELDS: Schema = {
    "key_id": STRING,
    "agent_id": STRING,
    "alias": NULLABLE_STRING,
    "source": STRING,
    "status": STRING,
    "created": NULLABLE_NUMBER,
    "expires": NULLABLE_NUMBER,
    "last_used": NULLABLE_NUMBER,
    "revoked": NULLABLE_NUMBER,
    "grace_until": NULLABLE_NUMBER,
}
KEY = answer(["key_id", "agent_id", "status"], KEY_FIELDS)
NEW_KEY = answer(["key_id", "agent_id", "status", "key"], {**KEY_FIELDS, "key": STRING})
ADMIN_ANSWERS: dict[str, Schema] = {
    "Agent": AGENT,
    "AgentList": answer(["object", "data"], {"object": {"const": "list"}, "data": {"type": "array", "items": AGENT}}),
    "Key": KEY,
    "KeyList": answer(["object", "data"], {"object": {"const": "list"}, "data": {"type": "array", "items": KEY}}),
    "NewKey": {**NEW_KEY, "description": "The key's plaintext appears here once, never again."},
    "RotatedKey": answer(
        [*NEW_KEY["required"], "previous_key_id"],
        {**NEW_KEY["properties"], "previous_key_id": STRING, "previous_valid_until": NULLABLE_NUMBER},
    ),
    "Deleted": answer(["id", "deleted"], {"id": STRING, "deleted": {"const": True}}),
    "Token": answer(
        ["access_token", "token_type", "expires_in", "expires_at"],
        {
            "access_token": STRING,
            "token_type": {"const": "bearer"},
            "expires_in": INTEGER,
            "expires_at": {"type": "number"},
            "max_expires_in": INTEGER,
        },
    ),
}


def pydantic_schemas(*models: type[BaseModel]) -> dict[str, Schema]:
    """The admin API's bodies are pydantic models; their own JSON Schemas, $defs hoisted to components."""
    schemas: dict[str, Schema] = {}
    for model in models:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


def admin_schemas() -> dict[str, Schema]:
    return {**ADMIN_ANSWERS, **pydantic_schemas(AgentCreate, AgentPatch, KeyCreate, KeyRotate, TokenRequest)}
