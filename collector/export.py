"""One OTLP export, whatever the transport: decode -> pipeline (dedup, WAL) -> response message.

OTLP/HTTP (app.py) and OTLP/gRPC (grpc_receiver.py) differ only in how bytes arrive and how
errors are spelled; both call `export` with the request body and render what it returns or raises.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from google.protobuf.message import Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsPartialSuccess, ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from collector.decode import DecodedBatch, decode_logs, decode_traces
from collector.pipeline import IngestResult, Pipeline
from collector.wire import Encoding

log = logging.getLogger(__name__)


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


@dataclass(frozen=True, slots=True)
class Signal:
    """What differs between traces and logs: the decoder, the pipeline entry and the response."""

    name: str
    decode: Callable[[bytes, Encoding], DecodedBatch]
    ingest: Callable[[Pipeline, DecodedBatch], Awaitable[IngestResult]]
    respond: Callable[[IngestResult], Message]


TRACES = Signal("traces", decode_traces, Pipeline.ingest_spans, _traces_response)
LOGS = Signal("logs", decode_logs, Pipeline.ingest_usage, _logs_response)


def _decode(pipeline: Pipeline, signal: Signal, body: bytes, encoding: Encoding) -> DecodedBatch:
    batch = signal.decode(body, encoding)
    if signal.decode is decode_logs:
        pipeline.check_usage(batch)  # the usage records' verdict, in the same worker thread
    return batch


async def export(pipeline: Pipeline, signal: Signal, body: bytes, encoding: Encoding) -> Message:
    """The response to one export request; raises CollectorError for what cannot be taken."""
    # Decoding (and checking) a large batch takes long enough to stall other requests; keep it
    # off the loop.
    batch = await asyncio.to_thread(_decode, pipeline, signal, body, encoding)
    result = await signal.ingest(pipeline, batch)
    if result.rejected:
        log.warning("collector: %s export rejected %d record(s): %s", signal.name, result.rejected, result.message)
    return signal.respond(result)
