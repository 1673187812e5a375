"""OTLP/HTTP receiver: POST /v1/traces and /v1/logs, GET /health. The composition root.

Each export is answered only after its rows are fdatasync'd in the write-ahead log. Errors follow
OTLP/HTTP: a google.rpc.Status body in the request's encoding, 400 for what cannot be read,
413/415 for what is too big or not spoken, 503 with Retry-After when storage fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsPartialSuccess, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector.decode import DecodedBatch, decode_logs, decode_traces
from collector.errors import CollectorError, PayloadTooLarge
from collector.pipeline import IngestResult, Pipeline
from collector.settings import CollectorSettings
from collector.wire import Encoding, decompress, encode_message, status_body
from meterline.layout import DataLayout

log = logging.getLogger(__name__)

Decoder = Callable[[bytes, Encoding], DecodedBatch]
Ingest = Callable[[DecodedBatch], Awaitable[IngestResult]]


def _traces_response(result: IngestResult) -> Message:
    if not result.rejected:
        return ExportTraceServiceResponse()
    partial = ExportTracePartialSuccess(rejected_spans=result.rejected, error_message=result.message)
    return ExportTraceServiceResponse(partial_success=partial)


def _logs_response(result: IngestResult) -> Message:
    if not result.rejected:
        return ExportLogsServiceResponse()
    partial = ExportLogsPartialSuccess(rejected_log_records=result.rejected, error_message=result.message)
    return ExportLogsServiceResponse(partial_success=partial)


class _Receiver:
    """The endpoints and the state they share; the state exists only inside the lifespan."""

    def __init__(self, settings: CollectorSettings) -> None:
        self._settings = settings
        self._pipeline: Pipeline | None = None

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        self._pipeline = await Pipeline.start(DataLayout.at(self._settings.data_dir))
        try:
            yield
        finally:
            await self._pipeline.close()
            self._pipeline = None

    @property
    def pipeline(self) -> Pipeline:
        if self._pipeline is None:
            raise RuntimeError("the collector app is used outside its lifespan")
        return self._pipeline

    async def traces(self, request: Request) -> Response:
        return await self._export(request, decode_traces, self.pipeline.ingest_spans, _traces_response)

    async def logs(self, request: Request) -> Response:
        return await self._export(request, decode_logs, self.pipeline.ingest_usage, _logs_response)

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "data_dir": str(self.pipeline.layout.root)})

    async def _export(
        self, request: Request, decode: Decoder, ingest: Ingest, respond: Callable[[IngestResult], Message]
    ) -> Response:
        # Until the request names a known encoding, errors are spelled in readable JSON.
        encoding = Encoding.JSON
        try:
            encoding = Encoding.of(request.headers.get("content-type"))
            body = await self._read_body(request)
            body = decompress(body, request.headers.get("content-encoding"), self._settings.max_body_bytes)
            # Decoding a large batch takes long enough to stall other requests; keep it off the loop.
            batch = await asyncio.to_thread(decode, body, encoding)
            result = await ingest(batch)
        except CollectorError as exc:
            return _error_response(request, exc, encoding)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is listening; just end the request
        if result.rejected:
            log.warning("collector: %s rejected %d record(s): %s", request.url.path, result.rejected, result.message)
        return Response(encode_message(respond(result), encoding), media_type=encoding.value)

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
        status_body(exc.status_code, str(exc), encoding),
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
