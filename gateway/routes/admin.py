"""The admin API: /admin/agents and /admin/keys, behind the master key.

Without `general_settings.master_key` every admin route answers 403 (the API is off, not
open). A new key's plaintext appears once, in the answer to create or rotate; nothing else
ever shows a key or its hash. Each change is applied to this replica's directory at once;
other replicas see it within `key_store.refresh_seconds`.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.client_json import loads_client
from gateway.errors import GatewayError, GatewayNotReady, InvalidApiKey, InvalidRequest
from gateway.keys.admin import KeyAdmin, NewKey, agent_view, key_view
from gateway.keys.service import KeyRuntime
from gateway.keys.store import AgentRecord
from meterline.config import Limits
from meterline.record_limits import ID_PATTERN


def _printable(value: str) -> str:
    if not value.isprintable():
        raise ValueError("may not hold control characters")
    return value


class AdminDisabled(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "admin_api_disabled"


class JsonBody(BaseModel):
    # Strict: "5" is no number and 5 no name; a body is refused with the field named, never coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


BodyT = TypeVar("BodyT", bound=JsonBody)

MAX_TEXT = 256
"""Longest tag, tag value, model name or key alias: the usage record's dimension limit."""
KEY_ID_PATTERN = r"^key_[0-9a-f]{16}$"
"""A key's public id, as `keys.hashing.new_key_id` mints it."""

AgentId = Annotated[str, Field(pattern=ID_PATTERN)]
"""Agent, team and project ids: the config's format (letters, digits, `._:@-`, at most 128)."""
Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_printable)]


class AgentCreate(JsonBody):
    id: AgentId
    team: AgentId
    project: AgentId | None = None
    tags: dict[Text, Text] = Field(default_factory=dict, max_length=64)
    models: list[Text] | None = Field(default=None, max_length=1000)
    limits: Limits = Field(default_factory=Limits)


class AgentPatch(JsonBody):
    """Fields left out are kept; `project: null` clears the project, `models: null` allows every
    model, `limits: null` removes the limits. `team` and `tags` cannot be null."""

    team: AgentId | None = None
    project: AgentId | None = None
    tags: dict[Text, Text] | None = Field(default=None, max_length=64)
    models: list[Text] | None = Field(default=None, max_length=1000)
    limits: Limits | None = None

    @field_validator("team", "tags", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value


class KeyCreate(JsonBody):
    agent_id: AgentId
    alias: Text | None = None
    expires_in_seconds: float | None = Field(default=None, gt=0, le=100 * 365 * 86400, allow_inf_nan=False)


class KeyRotate(JsonBody):
    grace_seconds: float | None = Field(default=None, ge=0, le=365 * 86400, allow_inf_nan=False)


def runtime(request: Request) -> KeyRuntime:
    keys: KeyRuntime = request.app.state.keys
    return keys


def _admin(request: Request) -> KeyAdmin:
    keys = runtime(request)
    if keys.master_key is None:
        raise AdminDisabled("The admin API is off: no general_settings.master_key is configured.")
    scheme, _, presented = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not keys.is_master_key(presented.strip()):
        raise InvalidApiKey("The admin API needs the master key: 'Authorization: Bearer <master key>'.")
    if keys.services is None:
        raise GatewayNotReady("The gateway is starting; the key store is not open yet.")
    return keys.services.admin


async def parse_body(request: Request, model: type[BodyT]) -> BodyT:
    """The JSON body as `model`; an empty body is `{}`. Errors are 400s that name the field."""
    raw = await request.body()
    data = loads_client(raw) if raw.strip() else {}  # strict UTF-8, depth limit, no lone surrogates
    try:
        return model.model_validate(data, strict=True)  # nested models (limits) too
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(f"Invalid request body: {param}: {first['msg']}", param=param) from None


def _path_id(request: Request, name: str, pattern: str) -> str:
    """A path (or query) id in its format, else a 400 naming it (never a lookup of `../x`)."""
    value = request.path_params.get(name) or request.query_params.get(name) or ""
    if re.fullmatch(pattern, value) is None:
        raise InvalidRequest(f"{name} {value[:MAX_TEXT]!r} is not a valid id.", param=name)
    return str(value)


def _new_key_body(new: NewKey, now: float) -> dict[str, Any]:
    return {**key_view(new.record, now), "key": new.key}


async def _changed(request: Request, body: Any, status_code: int = 200) -> Response:
    await runtime(request).directory.refresh()
    return JSONResponse(body, status_code=status_code)


async def list_agents(request: Request) -> Response:
    admin = _admin(request)
    return JSONResponse({"object": "list", "data": [agent_view(a) for a in await admin.store.list_agents()]})


async def create_agent(request: Request) -> Response:
    admin = _admin(request)
    body = await parse_body(request, AgentCreate)
    record = AgentRecord(
        agent_id=body.id,
        team=body.team,
        project=body.project,
        tags=body.tags,
        models=body.models,
        limits=body.limits.model_dump(exclude_none=True),
    )
    return await _changed(request, agent_view(await admin.create_agent(record)), 201)


async def agent(request: Request) -> Response:
    admin = _admin(request)
    agent_id = _path_id(request, "agent_id", ID_PATTERN)
    if request.method == "GET":
        return JSONResponse(agent_view(await admin.agent(agent_id)))
    if request.method == "DELETE":
        await admin.delete_agent(agent_id)
        return await _changed(request, {"id": agent_id, "deleted": True})
    patch = await parse_body(request, AgentPatch)
    changes = patch.model_dump(exclude_unset=True)
    if "limits" in changes:
        changes["limits"] = patch.limits.model_dump(exclude_none=True) if patch.limits else {}
    return await _changed(request, agent_view(await admin.update_agent(agent_id, changes)))


async def list_keys(request: Request) -> Response:
    admin = _admin(request)
    now = admin.clock()
    agent_id = _path_id(request, "agent_id", ID_PATTERN) if "agent_id" in request.query_params else None
    keys = await admin.store.list_keys(agent_id)
    return JSONResponse({"object": "list", "data": [key_view(k, now) for k in keys]})


async def create_key(request: Request) -> Response:
    admin = _admin(request)
    body = await parse_body(request, KeyCreate)
    new = await admin.create_key(body.agent_id, body.alias, body.expires_in_seconds)
    return await _changed(request, _new_key_body(new, admin.clock()), 201)


async def rotate_key(request: Request) -> Response:
    admin = _admin(request)
    old_id = _path_id(request, "key_id", KEY_ID_PATTERN)
    rotate = await parse_body(request, KeyRotate)
    new = await admin.rotate_key(old_id, rotate.grace_seconds)
    old = await admin.key(old_id)
    return await _changed(
        request,
        {**_new_key_body(new, admin.clock()), "previous_key_id": old_id, "previous_valid_until": old.valid_until},
    )


async def revoke_key(request: Request) -> Response:
    admin = _admin(request)
    revoked = await admin.revoke_key(_path_id(request, "key_id", KEY_ID_PATTERN))
    return await _changed(request, key_view(revoked, admin.clock()))


ROUTES = [
    Route("/admin/agents", list_agents, methods=["GET"]),
    Route("/admin/agents", create_agent, methods=["POST"]),
    Route("/admin/agents/{agent_id}", agent, methods=["GET", "PATCH", "DELETE"]),
    Route("/admin/keys", list_keys, methods=["GET"]),
    Route("/admin/keys", create_key, methods=["POST"]),
    Route("/admin/keys/{key_id}/rotate", rotate_key, methods=["POST"]),
    Route("/admin/keys/{key_id}/revoke", revoke_key, methods=["POST"]),
]
