"""OTLP logs requests parsed with each attribute left as its KeyValue's wire bytes.

A private message family with the same field numbers as ExportLogsServiceRequest, ResourceLogs,
ScopeLogs and LogRecord, but `LogRecord.attributes` declared `repeated bytes`: the wire form of
a repeated message and of repeated bytes is the same, so the parser hands back each KeyValue
undecoded, and `UsageColumns.add_raw` decodes only the ones its cache has not seen. Fields not
declared here (resource, scope, body, severity, ...) stay as unknown fields, which
`LogRecord.FromString(record.SerializeToString())` restores for the slow path.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from collector.errors import BadRequest

_F = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> Any:
    label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
    field = _F(name=name, number=number, type=kind, label=label, json_name=name)
    if type_name:
        field.type_name = type_name
    return field


def _message_types() -> tuple[type[Message], type[Message]]:
    message = descriptor_pb2.DescriptorProto
    pool = descriptor_pool.DescriptorPool()
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="meterline/collector/raw_logs.proto",
            package="meterline.rawlogs",
            syntax="proto3",
            message_type=[
                message(
                    name="RawLogRecord",
                    field=[
                        _field("time_unix_nano", 1, _F.TYPE_FIXED64),
                        _field("attributes", 6, _F.TYPE_BYTES, repeated=True),
                        _field("trace_id", 9, _F.TYPE_BYTES),
                        _field("span_id", 10, _F.TYPE_BYTES),
                        _field("observed_time_unix_nano", 11, _F.TYPE_FIXED64),
                        _field("event_name", 12, _F.TYPE_STRING),
                    ],
                ),
                message(
                    name="RawScopeLogs",
                    field=[_field("log_records", 2, _F.TYPE_MESSAGE, ".meterline.rawlogs.RawLogRecord", True)],
                ),
                message(
                    name="RawResourceLogs",
                    field=[_field("scope_logs", 2, _F.TYPE_MESSAGE, ".meterline.rawlogs.RawScopeLogs", True)],
                ),
                message(
                    name="RawExportLogsRequest",
                    field=[_field("resource_logs", 1, _F.TYPE_MESSAGE, ".meterline.rawlogs.RawResourceLogs", True)],
                ),
            ],
        )
    )
    request = message_factory.GetMessageClass(pool.FindMessageTypeByName("meterline.rawlogs.RawExportLogsRequest"))
    record = message_factory.GetMessageClass(pool.FindMessageTypeByName("meterline.rawlogs.RawLogRecord"))
    return request, record


RawExportLogsRequest, RawLogRecord = _message_types()


def parse_raw_logs(body: bytes) -> Message:
    """The request with raw attributes; BadRequest when it is not protobuf, as `parse_request` says."""
    try:
        parsed: Message = RawExportLogsRequest.FromString(body)
    except DecodeError as exc:
        raise BadRequest(f"body is not a protobuf ExportLogsServiceRequest: {exc}") from None
    return parsed
