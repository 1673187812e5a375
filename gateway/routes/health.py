"""Liveness (the process answers), readiness (upstreams started; `degraded` while a secret's
refresh fails, still 200, naming the references) and Prometheus metrics."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.state import GatewayState
from meterline.secrets import SecretRegistry


async def liveliness(request: Request) -> JSONResponse:
    return JSONResponse({"status": "alive"})


async def readiness(request: Request) -> JSONResponse:
    state: GatewayState = request.app.state.gateway
    ready = state.upstream is not None
    secrets: SecretRegistry | None = getattr(request.app.state, "secrets", None)
    degraded = secrets.degraded() if secrets is not None else []
    body: dict[str, object] = {
        "status": ("degraded" if degraded else "ready") if ready else "starting",
        "model_groups": state.upstream.model_groups if state.upstream else [],
        "agents": len(state.agents),
        "telemetry_pending": state.exporter.pending,
    }
    if degraded:
        body["secrets_degraded"] = [
            {"reference": s.reference, "backend": s.backend, "failures": s.failures, "error": s.error} for s in degraded
        ]
    return JSONResponse(body, status_code=200 if ready else 503)


async def metrics(request: Request) -> Response:
    state: GatewayState = request.app.state.gateway
    state.metrics.set_telemetry_pending(state.exporter.pending)
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
