"""Liveness (the process answers), readiness (upstreams started) and Prometheus metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

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


async def metrics(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    state.metrics.set_telemetry_pending(state.exporter.pending)
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
