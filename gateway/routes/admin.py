"""The admin API: /admin/agents and /admin/keys, behind the master key.

Without `general_settings.master_key` every admin route answers 403 (the API is off, not
open). A new key's plaintext appears once, in the answer to create or rotate; nothing else
ever shows a key or its hash. Each change is applied to this replica's directory at once;
other replicas see it within `key_store.refresh_seconds`.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.errors import GatewayError, GatewayNotReady, InvalidApiKey, InvalidRequest
from gateway.keys.admin import KeyAdmin, NewKey, agent_view, key_view
from gateway.keys.service import KeyRuntime
from gateway.keys.store import AgentRecord
from meterline.config import Limits


class AdminDisabled(GatewayError):
    status_code = 403
    error_type = "permission_error"
    code = "admin_api_disabled"


class JsonBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


BodyT = TypeVar("BodyT", bound=JsonBody)


class AgentCreate(JsonBody):
    id: str = Field(min_length=1, max_length=200)
    team: str = Field(min_length=1)
    project: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    models: list[str] | None = None
    limits: Limits = Field(default_factory=Limits)


class AgentPatch(JsonBody):
    team: str | None = Field(default=None, min_length=1)
    project: str | None = None
    tags: dict[str, str] | None = None
    models: list[str] | None = None
    limits: Limits | None = None


class KeyCreate(JsonBody):
    agent_id: str = Field(min_length=1)
    alias: str | None = None
    expires_in_seconds: float | None = Field(default=None, gt=0)


class KeyRotate(JsonBody):
    grace_seconds: float | None = Field(default=None, ge=0)


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
    try:
        return model.model_validate(json.loads(raw) if raw.strip() else {})
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidRequest("The request body is not valid JSON.") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        param = ".".join(str(part) for part in first["loc"]) or None
        raise InvalidRequest(f"Invalid request body: {param}: {first['msg']}", param=param) from None


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
    agent_id = request.path_params["agent_id"]
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
    keys = await admin.store.list_keys(request.query_params.get("agent_id"))
    return JSONResponse({"object": "list", "data": [key_view(k, now) for k in keys]})


async def create_key(request: Request) -> Response:
    admin = _admin(request)
    body = await parse_body(request, KeyCreate)
    new = await admin.create_key(body.agent_id, body.alias, body.expires_in_seconds)
    return await _changed(request, _new_key_body(new, admin.clock()), 201)


async def rotate_key(request: Request) -> Response:
    admin = _admin(request)
    rotate = await parse_body(request, KeyRotate)
    old_id = request.path_params["key_id"]
    new = await admin.rotate_key(old_id, rotate.grace_seconds)
    old = await admin.key(old_id)
    return await _changed(
        request,
        {**_new_key_body(new, admin.clock()), "previous_key_id": old_id, "previous_valid_until": old.valid_until},
    )


async def revoke_key(request: Request) -> Response:
    admin = _admin(request)
    revoked = await admin.revoke_key(request.path_params["key_id"])
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
