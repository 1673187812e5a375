"""Liveness (the process answers) and readiness (LiteLLM loaded, agents known)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse

from gateway.state import GatewayState


async def liveliness(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive"})


async def readiness(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    ready = state.upstream is not None
    body = {
        "status": "ready" if ready else "starting",
        "model_groups": state.upstream.model_groups if state.upstream else [],
        "agents": len(state.agents),
        "telemetry_pending": state.exporter.pending,
    }
    return JSONResponse(body, status_code=200 if ready else 503)
