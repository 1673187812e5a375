"""google.rpc.Status and google.rpc.RetryInfo, the error details OTLP uses on both transports.

They live in googleapis-common-protos, which Meterline does not depend on at run time; they are
declared here in a private descriptor pool instead, so the wire form is the same and nothing
clashes when that package is also loaded.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, message_factory
from google.protobuf.message import Message

_FIELD = descriptor_pb2.FieldDescriptorProto


def _field(name: str, number: int, kind: int, type_name: str = "", repeated: bool = False) -> Any:
    label = _FIELD.LABEL_REPEATED if repeated else _FIELD.LABEL_OPTIONAL
    field = _FIELD(name=name, number=number, type=kind, label=label, json_name=name)
    if type_name:  # an empty type_name still counts as set, and scalars must not have one
        field.type_name = type_name
    return field


def _pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()
    for well_known in (any_pb2, duration_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(well_known.DESCRIPTOR.serialized_pb))
    pool.Add(
        descriptor_pb2.FileDescriptorProto(
            name="meterline/collector/google_rpc.proto",
            package="google.rpc",
            syntax="proto3",
            dependency=["google/protobuf/any.proto", "google/protobuf/duration.proto"],
            message_type=[
                descriptor_pb2.DescriptorProto(
                    name="Status",
                    field=[
                        _field("code", 1, _FIELD.TYPE_INT32),
                        _field("message", 2, _FIELD.TYPE_STRING),
                        _field("details", 3, _FIELD.TYPE_MESSAGE, ".google.protobuf.Any", repeated=True),
                    ],
                ),
                descriptor_pb2.DescriptorProto(
                    name="RetryInfo",
                    field=[_field("retry_delay", 1, _FIELD.TYPE_MESSAGE, ".google.protobuf.Duration")],
                ),
            ],
        )
    )
    return pool


_POOL = _pool()
Status: type[Message] = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("google.rpc.Status"))
RetryInfo: type[Message] = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("google.rpc.RetryInfo"))
_Any: type[Message] = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("google.protobuf.Any"))
_Duration: type[Message] = message_factory.GetMessageClass(_POOL.FindMessageTypeByName("google.protobuf.Duration"))


def status_with_retry(code: int, message: str, retry_after_s: int | None) -> Message:
    """A Status whose details carry a RetryInfo when the sender should retry after a delay."""
    status = Status(code=code, message=message)
    if retry_after_s is not None:
        info = RetryInfo(retry_delay=_Duration(seconds=retry_after_s))
        status.details.append(_Any(type_url="type.googleapis.com/google.rpc.RetryInfo", value=info.SerializeToString()))
    return status
