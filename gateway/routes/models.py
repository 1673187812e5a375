"""GET /v1/models: the model groups the calling agent may use, in OpenAI's list shape."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.state import GatewayState


async def list_models(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    identity = state.agents.authenticate(request.headers.get("authorization"))
    groups = state.config.model_groups()
    if identity.models is not None:
        groups = [g for g in groups if g in identity.models]
    data = [{"id": g, "object": "model", "created": 0, "owned_by": "meterline"} for g in groups]
    return JSONResponse({"object": "list", "data": data})
