"""The gateway's composition root: `create_app(config)` wires routes, errors and state."""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from gateway.cache.factory import build_cache
from gateway.config_report import log_unused_settings
from gateway.dispatch import GatewayApp, unexpected_error
from gateway.errors import GatewayError, MethodNotAllowed, RouteNotFound, error_response
from gateway.keys.policy import KeyPolicyError, check_config_keys
from gateway.keys.service import KeyRuntime
from gateway.metering import InstanceLabels
from gateway.metrics import GatewayMetrics
from gateway.openapi import openapi_json
from gateway.quotas.reset import ResetAlarm
from gateway.quotas.service import QuotaService
from gateway.routes import admin as admin_routes
from gateway.routes.auth_token import issue_token
from gateway.routes.chat import chat_completions
from gateway.routes.completions import completions
from gateway.routes.count_tokens import count_tokens
from gateway.routes.embeddings import embeddings
from gateway.routes.health import liveliness, metrics, readiness
from gateway.routes.messages import messages
from gateway.routes.models import list_models
from gateway.routes.responses import responses
from gateway.secret_metrics import SecretMetrics
from gateway.state import GatewayState
from gateway.telemetry.collector_link import collector_tls, collector_token
from gateway.telemetry.durable import DurableResponses
from gateway.telemetry.exporter import TelemetryExporter
from gateway.telemetry.sink import TelemetrySink
from gateway.telemetry.spool import Spool
from gateway.upstream import Upstream
from meterline import __version__, semconv
from meterline.config import MeterlineConfig
from meterline.secrets import SecretRegistry, SecretResolutionError, install

log = logging.getLogger(__name__)


async def _gateway_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, GatewayError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        return error_response(MethodNotAllowed(f"Method {request.method} is not allowed on {request.url.path}."))
    return error_response(RouteNotFound(f"Unknown request URL: {request.method} {request.url.path}."))


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    return unexpected_error(request)


MODEL_CALLS = {
    "/v1/chat/completions": chat_completions,
    "/chat/completions": chat_completions,
    "/v1/completions": completions,
    "/completions": completions,
    "/v1/embeddings": embeddings,
    "/embeddings": embeddings,
    "/v1/responses": responses,
    "/responses": responses,
    "/v1/messages": messages,
    "/messages": messages,
}
"""The model-call routes, exact POST paths dispatched ahead of Starlette's stack (dispatch.py)."""


def create_app(
    config: MeterlineConfig, sink: TelemetrySink | None = None, clock: Callable[[], float] = time.time
) -> Starlette:
    """The gateway app; `sink` replaces the OTLP exporter (tests pass an InMemorySink); `clock`
    is the wall clock key expiry and rotation grace are judged by (tests pass a fake one)."""
    instance = f"{socket.gethostname()}:{os.getpid()}"
    # Every secret reference resolves here, before anything serves: one that cannot stops startup
    # with SecretResolutionError (reference, backend, reason). Provider keys stay live. Then the
    # keys the config gives are checked as resolved (KeyPolicyError: too short, shared, the master key).
    secrets = SecretRegistry(config.secrets)
    try:
        secrets.preload(config)
        check_config_keys(config, secrets.resolve)
    except (SecretResolutionError, KeyPolicyError):
        secrets.close()  # the Vault connection a failed preload may have opened
        raise
    install(secrets)
    keys = KeyRuntime(config, clock)
    agents = keys.directory
    exporter = sink or TelemetryExporter(
        config.telemetry.collector,
        {
            semconv.SERVICE_NAME: semconv.GATEWAY_SERVICE_NAME,
            semconv.SERVICE_VERSION: __version__,
            semconv.SERVICE_INSTANCE_ID: instance,
        },
        interval_s=config.telemetry.export_interval_ms / 1000.0,
        batch_size=config.telemetry.export_batch_size,
        spool=Spool(Path(config.storage.data_dir) / "spool", config.telemetry.spool_max_bytes),
        flush_ms=config.telemetry.spool_flush_ms,
        token=collector_token(config.telemetry, secrets),
        tls=collector_tls(config.telemetry),
        max_backlog=config.telemetry.max_backlog,
    )
    state = GatewayState(
        config=config,
        agents=agents,
        labels=InstanceLabels(gateway_instance=instance, env=config.env, tenant=config.tenant),
        exporter=exporter,
        metrics=GatewayMetrics(model_groups=config.model_groups()),
    )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        log_unused_settings(config, log)
        await exporter.start()
        await keys.start()
        state.cache = build_cache(config.response_cache)
        upstream = Upstream(config, secrets)
        await upstream.start()
        await secrets.start()
        on_reset = ResetAlarm(config, state.metrics, state.later, instance=instance)
        quotas = state.quotas = QuotaService.from_config(config, upstream.prices, on_reset=on_reset)
        state.upstream = upstream
        log.info("gateway ready: %d model groups, %d agent keys", len(upstream.model_groups), len(agents))
        try:
            yield
        finally:
            await state.drain_background()
            await quotas.close()
            await secrets.stop()
            await upstream.close()
            if state.cache is not None:
                await state.cache.close()
            await keys.close()
            await exporter.close()
            log.info("gateway stopped: %d telemetry items undelivered", exporter.pending)

    app = GatewayApp(
        direct=MODEL_CALLS,
        sink=exporter,
        routes=[
            *(Route(path, endpoint, methods=["POST"]) for path, endpoint in MODEL_CALLS.items()),
            Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/messages/count_tokens", count_tokens, methods=["POST"]),
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/models", list_models, methods=["GET"]),
            Route("/health/liveliness", liveliness, methods=["GET"]),
            Route("/health/readiness", readiness, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/v1/auth/token", issue_token, methods=["POST"]),
            *admin_routes.ROUTES,
            Route("/openapi.json", openapi_json, methods=["GET"]),
        ],
        exception_handlers={
            GatewayError: _gateway_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
        lifespan=lifespan,
        middleware=[Middleware(DurableResponses, sink=exporter)],
    )
    app.state.gateway = state
    app.state.secrets = secrets
    state.metrics.registry.register(SecretMetrics(secrets))
    app.state.keys = keys
    return app
