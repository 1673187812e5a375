"""OTLP/HTTP receiver: POST /v1/traces and /v1/logs, GET /health. The composition root: the
lifespan also runs the OTLP/gRPC receiver (grpc_receiver.py) on the same pipeline.

Each export is answered only after its rows are fdatasync'd in the write-ahead log. Errors follow
OTLP/HTTP: a google.rpc.Status body in the request's encoding, 400 for what cannot be read,
413/415 for what is too big or not spoken, 503 with Retry-After when storage fails.

The two export endpoints are plain ASGI, ahead of Starlette: a 512-record export then costs one
header scan, one body join and two `send` calls instead of Starlette's middleware, routing,
Request and Response layers (~0.5 us per record of a ~10 us budget). Everything else (the
lifespan, /health, 404 and 405) is the Starlette app behind them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from collector.auth import IngestAuth
from collector.errors import CollectorError, PayloadTooLarge, Unauthenticated
from collector.export import LOGS, TRACES, Signal, export
from collector.grpc_receiver import GrpcReceiver, GrpcStartError
from collector.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from collector.metrics import CollectorMetrics
from collector.pipeline import Pipeline
from collector.price_rates import PriceRates
from collector.settings import CollectorSettings
from collector.validation import RecordValidator
from collector.wire import Encoding, decompress, encode_message, status_body
from meterline.layout import DataLayout
from meterline.storage import open_target

log = logging.getLogger(__name__)


class _Receiver:
    """The endpoints and the state they share; the state exists only inside the lifespan."""

    def __init__(self, settings: CollectorSettings, auth: IngestAuth) -> None:
        self._settings = settings
        self._auth = auth
        self._pipeline: Pipeline | None = None
        self.metrics = CollectorMetrics()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        settings = self._settings
        layout = DataLayout.at(settings.data_dir)
        target = open_target(layout, settings.storage_url, settings.s3_endpoint_url, settings.s3_region)
        validator = RecordValidator(settings.validation, await asyncio.to_thread(PriceRates.bundled))
        self._pipeline = await Pipeline.start(
            layout, target=target, compaction=settings.compaction, validator=validator, metrics=self.metrics
        )
        grpc: GrpcReceiver | None = None
        await self._auth.start()
        try:
            if self._settings.grpc_port:
                grpc = await self._start_grpc(self._pipeline)
            yield
        finally:
            if grpc is not None:
                await grpc.stop()
            await self._pipeline.close()
            self._pipeline = None
            await self._auth.stop()

    async def _start_grpc(self, pipeline: Pipeline) -> GrpcReceiver | None:
        try:
            return await GrpcReceiver.start(pipeline, self._settings, self._auth)
        except GrpcStartError as exc:
            if self._settings.grpc_required:
                raise
            log.warning("collector: %s; serving OTLP/HTTP only", exc)
            return None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("the collector app is used outside its lifespan")
        return self._pipeline

    async def prometheus(self, request: Request) -> Response:
        return Response(self.metrics.render(), media_type=METRICS_CONTENT_TYPE)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "data_dir": self.pipeline.target.describe()})

    async def export(self, scope: Scope, receive: Receive, send: Send, signal: Signal) -> None:
        """One OTLP/HTTP export request, answered on `send`."""
        headers = _headers(scope)
        # Until the request names a known encoding, errors are spelled in readable JSON.
        encoding = Encoding.JSON
        try:
            encoding = Encoding.of(headers.get("content-type"))
            signal = self._auth.authorize(self._auth.authenticate(headers.get("authorization")), signal)
            body = await self._read_body(headers, receive)
            if body is None:
                return  # the client went away: nobody is listening for an answer
            body = decompress(body, headers.get("content-encoding"), self._settings.max_body_bytes)
            message = await export(self.pipeline, signal, body, encoding)
        except CollectorError as exc:
            await _error_response(scope["path"], exc, encoding)(scope, receive, send)
            return
        wire = encode_message(message, encoding)
        content_length = str(len(wire)).encode("latin-1")
        start_headers = [(b"content-type", _MEDIA_TYPES[encoding]), (b"content-length", content_length)]
        await send({"type": "http.response.start", "status": 200, "headers": start_headers})
        await send({"type": "http.response.body", "body": wire})

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes | None:
        """The whole body, or None when the client disconnected first."""
        limit = self._settings.max_body_bytes
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # a chunked body has no Content-Length to check up front
                raise PayloadTooLarge(f"body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_MEDIA_TYPES = {encoding: encoding.value.encode("latin-1") for encoding in Encoding}
_EXPORTS = {"/v1/traces": TRACES, "/v1/logs": LOGS}


def _headers(scope: Scope) -> dict[str, str]:
    """The request headers by (lower-case) name; a repeated header keeps its first value."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(scope["headers"])}


def _error_response(path: str, exc: CollectorError, encoding: Encoding) -> Response:
    if exc.retryable:
        log.error("collector: %s failed, sender will retry: %s", path, exc, exc_info=exc.__cause__)
    else:
        log.info("collector: %s answered %d: %s", path, exc.status_code, exc)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else {}
    if isinstance(exc, Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    return Response(
        status_body(exc.rpc_code, str(exc), encoding),
        status_code=exc.status_code,
        media_type=encoding.value,
        headers=headers,
    )


class _CollectorApp:
    """POST /v1/traces and /v1/logs straight to the receiver; everything else to Starlette."""

    def __init__(self, receiver: _Receiver, fallback: ASGIApp) -> None:
        self._receiver = receiver
        self._fallback = fallback

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and (signal := _EXPORTS.get(scope["path"])):
            await self._receiver.export(scope, receive, send, signal)
        else:
            await self._fallback(scope, receive, send)


def create_app(settings: CollectorSettings, auth: IngestAuth | None = None) -> ASGIApp:
    """The collector app; `auth` (the principals, their tokens resolved) defaults to
    `IngestAuth.open(settings)`, which raises for a token that cannot be used."""
    receiver = _Receiver(settings, auth if auth is not None else IngestAuth.open(settings))
    # The export routes stay declared here too, so a GET on them is Starlette's 405, not a 404.
    routes = [
        Route("/v1/traces", _not_reached, methods=["POST"]),
        Route("/v1/logs", _not_reached, methods=["POST"]),
        Route("/health", receiver.health, methods=["GET"]),
        Route("/metrics", receiver.prometheus, methods=["GET"]),
    ]
    return _CollectorApp(receiver, Starlette(routes=routes, lifespan=receiver.lifespan))


async def _not_reached(request: Request) -> Response:
    raise AssertionError("POST exports are served ahead of Starlette")
