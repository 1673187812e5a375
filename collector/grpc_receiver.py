"""OTLP/gRPC receiver: TraceService/Export and LogsService/Export on the HTTP side's pipeline.

The methods take the raw request bytes, so both transports decode with the same code
(`collector.export`). Errors map as the OTLP specification asks: INVALID_ARGUMENT for what
cannot be read (not retryable); UNAVAILABLE, or RESOURCE_EXHAUSTED when pushing back, with a
google.rpc.RetryInfo in the status details telling the sender when to retry. A message over
`max_body_bytes` is refused by gRPC itself with RESOURCE_EXHAUSTED and no RetryInfo.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import NoReturn

import grpc

from collector.auth import IngestAuth
from collector.errors import CollectorError
from collector.export import LOGS, TRACES, Signal, export
from collector.pipeline import Pipeline
from collector.rpc_status import status_with_retry
from collector.settings import CollectorSettings
from collector.wire import Encoding
from meterline.log_limit import LogLimiter

log = logging.getLogger(__name__)

TRACE_SERVICE = "opentelemetry.proto.collector.trace.v1.TraceService"
LOGS_SERVICE = "opentelemetry.proto.collector.logs.v1.LogsService"
_STATUS_DETAILS_KEY = "grpc-status-details-bin"
_GRACE_S = 5.0

Handler = Callable[[bytes, grpc.aio.ServicerContext], Awaitable[bytes]]


class GrpcStartError(RuntimeError):
    """The gRPC port could not be bound."""


def _authorization(context: grpc.aio.ServicerContext) -> str | None:
    for key, value in context.invocation_metadata() or ():
        if key == "authorization":
            return value if isinstance(value, str) else value.decode("latin-1")
    return None


def _handler(pipeline: Pipeline, signal: Signal, auth: IngestAuth) -> Handler:
    limited = LogLimiter(log)

    async def handle(body: bytes, context: grpc.aio.ServicerContext) -> bytes:
        try:
            allowed = auth.authorize(auth.authenticate(_authorization(context)), signal)
            response = await export(pipeline, allowed, body, Encoding.PROTOBUF)
        except CollectorError as exc:
            await _abort(context, signal, exc)
        except Exception:  # noqa: BLE001 - one call's fault: INTERNAL for it, the server goes on
            pipeline.metrics.loop_errors.labels("grpc").inc()
            limited.log(
                logging.ERROR, "grpc", "collector: gRPC %s export failed unexpectedly", signal.name, exc_info=True
            )
            await context.abort(grpc.StatusCode.INTERNAL, "the collector could not take this export")
        wire: bytes = response.SerializeToString()
        return wire

    return handle


async def _abort(context: grpc.aio.ServicerContext, signal: Signal, exc: CollectorError) -> NoReturn:
    if exc.retryable:
        log.error("collector: gRPC %s export failed, sender will retry: %s", signal.name, exc, exc_info=exc.__cause__)
    else:
        log.info("collector: gRPC %s export refused: %s", signal.name, exc)
    status = status_with_retry(exc.rpc_code, str(exc), exc.retry_after_s if exc.retryable else None)
    await context.abort(
        grpc.StatusCode(_CODES[exc.rpc_code]),
        str(exc),
        trailing_metadata=((_STATUS_DETAILS_KEY, status.SerializeToString()),),
    )
    raise AssertionError("ServicerContext.abort returns only by raising")


# google.rpc.Code number -> grpc.StatusCode value (a (number, name) pair).
_CODES = {code.value[0]: code.value for code in grpc.StatusCode}


class GrpcReceiver:
    def __init__(self, server: grpc.aio.Server, address: str) -> None:
        self._server = server
        self.address = address

    @classmethod
    async def start(cls, pipeline: Pipeline, settings: CollectorSettings, auth: IngestAuth) -> GrpcReceiver:
        limit = settings.max_body_bytes
        server = grpc.aio.server(
            options=[("grpc.max_receive_message_length", limit), ("grpc.so_reuseport", 0)],
        )
        services = {TRACE_SERVICE: TRACES, LOGS_SERVICE: LOGS}
        server.add_generic_rpc_handlers(
            [
                grpc.method_handlers_generic_handler(
                    service, {"Export": grpc.unary_unary_rpc_method_handler(_handler(pipeline, signal, auth))}
                )
                for service, signal in services.items()
            ]
        )
        address = f"{settings.grpc_host}:{settings.grpc_port}"
        try:
            if settings.tls_cert_file is not None and settings.tls_key_file is not None:
                pair = (settings.tls_key_file.read_bytes(), settings.tls_cert_file.read_bytes())
                server.add_secure_port(address, grpc.ssl_server_credentials([pair]))
            else:
                server.add_insecure_port(address)
        except RuntimeError as exc:  # grpc raises RuntimeError when the port cannot be bound
            raise GrpcStartError(f"cannot listen for OTLP/gRPC on {address}: {exc}") from exc
        await server.start()
        log.info("collector: OTLP/gRPC on %s%s", address, " (TLS)" if settings.tls_cert_file else "")
        return cls(server, address)

    async def stop(self) -> None:
        """Stop taking new calls and let those in flight finish (they are acknowledged only
        once durable, so one cut short is simply retried by its sender)."""
        await self._server.stop(_GRACE_S)
