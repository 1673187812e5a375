"""OTLP/HTTP receiver: POST /v1/traces and /v1/logs, GET /health. The composition root: the
lifespan also runs the OTLP/gRPC receiver (grpc_receiver.py) on the same pipeline.

Each export is answered only after its rows are fdatasync'd in the write-ahead log. Errors follow
OTLP/HTTP: a google.rpc.Status body in the request's encoding, 400 for what cannot be read,
413/415 for what is too big or not spoken, 503 with Retry-After when storage fails.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.errors import CollectorError, PayloadTooLarge
from collector.export import LOGS, TRACES, Signal, export
from collector.grpc_receiver import GrpcReceiver, GrpcStartError
from collector.pipeline import Pipeline
from collector.settings import CollectorSettings
from collector.wire import Encoding, decompress, encode_message, status_body
from meterline.layout import DataLayout
from meterline.storage import open_target

log = logging.getLogger(__name__)


class _Receiver:
    """The endpoints and the state they share; the state exists only inside the lifespan."""

    def __init__(self, settings: CollectorSettings) -> None:
        self._settings = settings
        self._pipeline: Pipeline | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        settings = self._settings
        layout = DataLayout.at(settings.data_dir)
        target = open_target(layout, settings.storage_url, settings.s3_endpoint_url, settings.s3_region)
        self._pipeline = await Pipeline.start(layout, target=target, compaction=settings.compaction)
        grpc: GrpcReceiver | None = None
        try:
            if self._settings.grpc_port:
                grpc = await self._start_grpc(self._pipeline)
            yield
        finally:
            if grpc is not None:
                await grpc.stop()
            await self._pipeline.close()
            self._pipeline = None

    async def _start_grpc(self, pipeline: Pipeline) -> GrpcReceiver | None:
        try:
            return await GrpcReceiver.start(pipeline, self._settings)
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

    async def traces(self, request: Request) -> Response:
        return await self._export(request, TRACES)

    async def logs(self, request: Request) -> Response:
        return await self._export(request, LOGS)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "data_dir": self.pipeline.target.describe()})

    async def _export(self, request: Request, signal: Signal) -> Response:
        # Until the request names a known encoding, errors are spelled in readable JSON.
        encoding = Encoding.JSON
        try:
            encoding = Encoding.of(request.headers.get("content-type"))
            body = await self._read_body(request)
            body = decompress(body, request.headers.get("content-encoding"), self._settings.max_body_bytes)
            message = await export(self.pipeline, signal, body, encoding)
        except CollectorError as exc:
            return _error_response(request, exc, encoding)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; just end the request
        return Response(encode_message(message, encoding), media_type=encoding.value)

    async def _read_body(self, request: Request) -> bytes:
        limit = self._settings.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            raise PayloadTooLarge(f"body of {declared} bytes exceeds {limit} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:  # a chunked body has no Content-Length to check up front
                raise PayloadTooLarge(f"body exceeds {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def _error_response(request: Request, exc: CollectorError, encoding: Encoding) -> Response:
    if exc.retryable:
        log.error("collector: %s failed, sender will retry: %s", request.url.path, exc, exc_info=exc.__cause__)
    else:
        log.info("collector: %s answered %d: %s", request.url.path, exc.status_code, exc)
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.retry_after_s is not None else None
    return Response(
        status_body(exc.rpc_code, str(exc), encoding),
        status_code=exc.status_code,
        media_type=encoding.value,
        headers=headers,
    )


def create_app(settings: CollectorSettings) -> Starlette:
    receiver = _Receiver(settings)
    routes = [
        Route("/v1/traces", receiver.traces, methods=["POST"]),
        Route("/v1/logs", receiver.logs, methods=["POST"]),
        Route("/health", receiver.health, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=receiver.lifespan)
