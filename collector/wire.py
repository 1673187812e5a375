"""OTLP/HTTP encodings: media types, gzip, protobuf and JSON messages, the google.rpc.Status body."""

from __future__ import annotations

import base64
import enum
import json
import zlib
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from collector.rpc_status import Status

M = TypeVar("M", bound=Message)

MAX_JSON_DEPTH = 64
"""Deepest message nesting an OTLP/JSON body may have (an export request is 6 levels to an
attribute; each nested array or map value adds 2); deeper bodies get 400, never a 500."""


class Encoding(enum.Enum):
    PROTOBUF = "application/x-protobuf"
    JSON = "application/json"

    @classmethod
    def of(cls, content_type: str | None) -> Encoding:
        """The encoding named by a Content-Type header (parameters such as charset ignored)."""
        media = (content_type or "").split(";", 1)[0].strip().lower()
        for encoding in cls:
            if encoding.value == media:
                return encoding
        raise UnsupportedMediaType(
            f"unsupported content type {media or '(none)'!r}; use application/x-protobuf or application/json"
        )


def decompress(body: bytes, content_encoding: str | None, limit: int) -> bytes:
    """The body without its Content-Encoding; a gzip body may not inflate beyond `limit` bytes."""
    coding = (content_encoding or "identity").strip().lower()
    if coding == "identity":
        return body
    if coding != "gzip":
        raise UnsupportedMediaType(f"unsupported content encoding {coding!r}; use gzip or none")
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        # max_length caps memory against a small body that inflates to gigabytes.
        out = inflater.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BadRequest(f"body is not valid gzip: {exc}") from None
    if len(out) > limit:
        raise PayloadTooLarge(f"decompressed body exceeds {limit} bytes")
    if not inflater.eof:
        raise BadRequest("body is not valid gzip: truncated stream")
    return out


# OTLP/JSON departs from the protobuf JSON mapping in one way: trace and span ids are hex, not
# base64 (https://opentelemetry.io/docs/specs/otlp/#json-protobuf-encoding). These are the
# places they occur in trace and log requests, under either field-name spelling.
_PATHS = (
    (("resourceSpans", "resource_spans"), ("scopeSpans", "scope_spans"), ("spans",)),
    (("resourceLogs", "resource_logs"), ("scopeLogs", "scope_logs"), ("logRecords", "log_records")),
)
_ID_FIELDS = ("traceId", "spanId", "parentSpanId", "trace_id", "span_id", "parent_span_id")


def _hex_to_base64(holder: dict[str, Any], where: str) -> None:
    for name in _ID_FIELDS:
        value = holder.get(name)
        if isinstance(value, str) and value:
            try:
                holder[name] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
            except ValueError:
                raise BadRequest(f"{where}.{name}: {value!r} is not a hex id") from None


def _ids_from_hex(document: dict[str, Any]) -> None:
    for resource_keys, scope_keys, item_keys in _PATHS:
        for r, resource in enumerate(_children(document, resource_keys)):
            for s, scope in enumerate(_children(resource, scope_keys)):
                for i, item in enumerate(_children(scope, item_keys)):
                    where = f"{resource_keys[0]}[{r}].{scope_keys[0]}[{s}].{item_keys[0]}[{i}]"
                    _hex_to_base64(item, where)
                    for k, link in enumerate(_children(item, ("links",))):
                        _hex_to_base64(link, f"{where}.links[{k}]")


def _children(parent: dict[str, Any], names: tuple[str, ...]) -> list[dict[str, Any]]:
    value = next((parent[name] for name in names if name in parent), None)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def parse_request(body: bytes, encoding: Encoding, message_type: type[M]) -> M:
    """An OTLP export request from its wire bytes; BadRequest says why it could not be read."""
    name = message_type.DESCRIPTOR.name
    if encoding is Encoding.PROTOBUF:
        try:
            parsed: M = message_type.FromString(body)
        except DecodeError as exc:
            raise BadRequest(f"body is not a protobuf {name}: {exc}") from None
        return parsed
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    except RecursionError:  # the C scanner's depth guard: far deeper than any OTLP message
        raise BadRequest(f"body is not a JSON {name}: nested too deeply") from None
    if not isinstance(document, dict):
        raise BadRequest(f"body is not a JSON {name} object")
    _ids_from_hex(document)
    try:
        # OTLP receivers must ignore unknown fields so newer senders keep working.
        json_format.ParseDict(
            document, parsed := message_type(), ignore_unknown_fields=True, max_recursion_depth=MAX_JSON_DEPTH
        )
    except json_format.ParseError as exc:
        raise BadRequest(f"body is not a JSON {name}: {exc}") from None
    except RecursionError:
        raise BadRequest(f"body is not a JSON {name}: nested too deeply") from None
    return parsed


def encode_message(message: Message, encoding: Encoding) -> bytes:
    if encoding is Encoding.PROTOBUF:
        wire: bytes = message.SerializeToString()
        return wire
    text: str = json_format.MessageToJson(message, indent=None)
    return text.encode()


def status_body(rpc_code: int, message: str, encoding: Encoding) -> bytes:
    """A google.rpc.Status, as OTLP/HTTP requires for every error response."""
    return encode_message(Status(code=rpc_code, message=message), encoding)
