"""A real collector (uvicorn, and gRPC) refusing invalid usage records into the quarantine while
the good records of the same batch land; bad bodies answered 400 / INVALID_ARGUMENT."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx
import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord

from collector.catalog import connect, open_catalog
from collector.rpc_status import Status
from meterline.cli.quarantine import read_quarantine
from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from meterline.quarantine import QUARANTINE_TABLE
from meterline.record_limits import RecordLimits
from meterline.storage import open_target
from tests.aws import moto_url, s3_bucket
from tests.collector.otlp_fixtures import (
    current_usage,
    gateway_id,
    logs_request,
    otlp_json,
    read_rows,
    running_collector,
)
from tests.conftest import free_port

__all__ = ["moto_url"]  # the session-wide moto server fixture

PROTOBUF = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}
GOOD_COST = 0.000387  # current_usage's cost_usd


def _bad_records() -> list[tuple[Any, list[str]]]:
    """What issue 12 found landing in the ledger, each with the rules it must be refused by."""
    year_2500 = dt.datetime(2500, 1, 1, tzinfo=dt.UTC)
    return [
        (current_usage(10, cost_usd=-1.0), ["cost_usd.negative"]),
        (current_usage(11, cost_usd=math.nan), ["cost_usd.not_finite"]),
        (current_usage(12, cost_usd=math.inf), ["cost_usd.not_finite", "cost_usd.above_price_ceiling"]),
        (current_usage(13, ts_start=year_2500), ["ts_start.in_future", "ts_end.in_future"]),
        (current_usage(14, agent_id="../x\nbad"), ["agent_id.format"]),
        (current_usage(15, cost_usd=1234.5), ["cost_usd.too_large", "cost_usd.above_price_ceiling"]),
    ]


def _quarantine(layout: DataLayout) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for path in sorted(layout.table_dir(QUARANTINE_TABLE).glob("date=*/*.parquet")):
        rows.extend(pq.read_table(path).to_pylist())
    return sorted(rows, key=lambda r: r["request_id"])


def _strict(tmp_path: Path, **fields: Any) -> Any:
    """A collector with the production limits (the fixture's lenient ones replaced)."""
    return running_collector(tmp_path, validation=RecordLimits(), **fields)


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_bad_records_are_quarantined_and_the_good_ones_of_their_batch_land(tmp_path: Path, as_json: bool) -> None:
    bad = _bad_records()
    records = [current_usage(1), *(r for r, _ in bad[:3]), current_usage(2), *(r for r, _ in bad[3:]), current_usage(3)]
    request = logs_request(*(to_log_record(r) for r in records))
    body = otlp_json(request) if as_json else request.SerializeToString()

    with _strict(tmp_path) as url, httpx.Client(base_url=url) as client:
        response = client.post("/v1/logs", content=body, headers=JSON if as_json else PROTOBUF)
        metrics = client.get("/metrics").text

    assert response.status_code == 200
    if as_json:
        answer = json_format.Parse(response.text, ExportLogsServiceResponse())
    else:
        answer = ExportLogsServiceResponse.FromString(response.content)
    assert answer.partial_success.rejected_log_records == 6
    message = answer.partial_success.error_message
    assert message.startswith(f"usage record {gateway_id(10)!r} quarantined: cost_usd: -1.0 is negative; ")
    assert "agent_id: '../x\\nbad' does not match" in message and message.endswith("; and 1 more")

    layout = DataLayout.at(tmp_path)
    ledger = read_rows(layout, "usage")
    assert sorted(r["request_id"] for r in ledger) == [gateway_id(1), gateway_id(2), gateway_id(3)]
    assert sum(Decimal(str(r["cost_usd"])) for r in ledger) == Decimal("0.001161")
    quarantined = _quarantine(layout)
    assert [(r["request_id"], r["reasons"], r["source"]) for r in quarantined] == [
        (r.request_id, codes, "collector") for r, codes in bad
    ]
    assert quarantined[4]["agent_id"] == "../x\nbad"
    assert quarantined[3]["record_date"] == dt.date(2500, 1, 1)
    assert quarantined[0]["details"] == "cost_usd: -1.0 is negative"
    assert "meterline_collector_quarantined_records_total 6.0" in metrics
    assert 'meterline_collector_quarantine_reasons_total{rule="cost_usd.not_finite"} 2.0' in metrics

    with open_catalog(layout) as con:
        counts = con.execute(
            "SELECT unnest(reasons) AS rule, count(*) FROM quarantine GROUP BY rule ORDER BY rule"
        ).fetchall()
    assert counts == [
        ("agent_id.format", 1),
        ("cost_usd.above_price_ceiling", 2),
        ("cost_usd.negative", 1),
        ("cost_usd.not_finite", 2),
        ("cost_usd.too_large", 1),
        ("ts_end.in_future", 1),
        ("ts_start.in_future", 1),
    ]


def test_a_retried_batch_rewrites_its_quarantine_file_and_bills_nothing_twice(tmp_path: Path) -> None:
    request = logs_request(to_log_record(current_usage(1)), to_log_record(current_usage(2, cost_usd=-3.0)))
    with _strict(tmp_path) as url, httpx.Client(base_url=url) as client:
        for _ in range(3):
            assert client.post("/v1/logs", content=request.SerializeToString(), headers=PROTOBUF).status_code == 200

    layout = DataLayout.at(tmp_path)
    assert [r["request_id"] for r in read_rows(layout, "usage")] == [gateway_id(1)]
    assert [r["request_id"] for r in _quarantine(layout)] == [gateway_id(2)]


@pytest.fixture
def grpc_port() -> int:
    return free_port()


@pytest.fixture
def channel(grpc_port: int) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as ch:
        yield ch


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(tag: int, payload: bytes) -> bytes:
    return bytes([tag]) + _varint(len(payload)) + payload


def _deep_usage_request(depth: int) -> bytes:
    """A usage record with an attribute nested `depth` arrays deep, serialised by hand: the
    protobuf runtime itself refuses to build a message this deep."""
    value = AnyValue(string_value="x").SerializeToString()
    for _ in range(depth):
        value = _field(0x2A, _field(0x0A, value))  # AnyValue.array_value{ArrayValue.values}
    attribute = _field(0x0A, b"meterline.note") + _field(0x12, value)  # KeyValue{key, value}
    record = to_log_record(current_usage(5)).SerializeToString() + _field(0x32, attribute)  # + attributes
    return _field(0x0A, _field(0x12, _field(0x12, record)))  # resource_logs{scope_logs{log_records}}


def test_over_grpc_bad_records_are_quarantined_and_a_deep_body_is_invalid_argument(
    tmp_path: Path, grpc_port: int, channel: grpc.Channel
) -> None:
    stub = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
    raw = channel.unary_unary(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        request_serializer=lambda body: body,
        response_deserializer=ExportLogsServiceResponse.FromString,
    )
    with _strict(tmp_path, grpc_port=grpc_port) as url:
        answer = stub.Export(
            logs_request(to_log_record(current_usage(1)), to_log_record(current_usage(2, cost_usd=math.nan))),
            timeout=10,
        )
        with pytest.raises(grpc.RpcError) as refused:
            raw(_deep_usage_request(3000), timeout=10)
        over_http = httpx.post(f"{url}/v1/logs", content=_deep_usage_request(3000), headers=PROTOBUF)

    assert answer.partial_success.rejected_log_records == 1
    assert answer.partial_success.error_message == (
        f"usage record {gateway_id(2)!r} quarantined: cost_usd: nan is not finite"
    )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert over_http.status_code == 400
    assert Status.FromString(over_http.content).code == 3
    layout = DataLayout.at(tmp_path)
    assert [r["request_id"] for r in read_rows(layout, "usage")] == [gateway_id(1)]
    assert [r["reasons"] for r in _quarantine(layout)] == [["cost_usd.not_finite"]]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"resourceLogs":[' + b"[" * 3000 + b"]" * 3000 + b"]}", "nested too deeply"),
        (b'{"resourceLogs":[{"scopeLogs":"\xff\xfe"}]}', "body is not JSON"),
        (b'{"resourceLogs":[{"resource":{"attributes":[{"key":"\\ud800","value":{}}]}}]}', "Unpaired surrogate"),
    ],
    ids=["3000-deep", "invalid-utf8", "lone-surrogate"],
)
def test_bad_json_bodies_get_a_400_with_an_otlp_status(tmp_path: Path, body: bytes, says: str) -> None:
    with running_collector(tmp_path) as url, httpx.Client(base_url=url) as client:
        logs = client.post("/v1/logs", content=body, headers=JSON)
        traces = client.post("/v1/traces", content=body.replace(b"resourceLogs", b"resourceSpans"), headers=JSON)

    for response in (logs, traces):
        assert response.status_code == 400
        assert response.headers["content-type"] == "application/json"
        status = response.json()
        assert status["code"] == 3 and says in status["message"]
        assert "Traceback" not in response.text


@pytest.mark.parametrize("bad", [b"\xed\xa0\x80", b"\xff\xfe\xfd"], ids=["surrogate-as-utf8", "invalid-utf8"])
def test_a_protobuf_string_that_is_not_utf8_gets_400_and_invalid_argument(
    tmp_path: Path, grpc_port: int, channel: grpc.Channel, bad: bytes
) -> None:
    body = logs_request(to_log_record(current_usage(1, model_requested="gpt-4o-min"))).SerializeToString()
    body = body.replace(b"gpt-4o-min", b"gpt-4o-" + bad)  # same length: every length prefix holds
    raw = channel.unary_unary(
        "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
        request_serializer=lambda message: message,
        response_deserializer=ExportLogsServiceResponse.FromString,
    )
    with running_collector(tmp_path, grpc_port=grpc_port) as url:
        over_http = httpx.post(f"{url}/v1/logs", content=body, headers=PROTOBUF)
        with pytest.raises(grpc.RpcError) as refused:
            raw(body, timeout=10)

    assert over_http.status_code == 400
    assert Status.FromString(over_http.content).code == 3
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert read_rows(DataLayout.at(tmp_path), "usage") == []


def test_with_an_s3_ledger_the_quarantine_lands_in_s3_and_its_view_reads_it(
    tmp_path: Path, moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = s3_bucket(moto_url, monkeypatch, "ledger")
    settings: dict[str, Any] = {"storage_url": "s3://ledger/prod", "s3_endpoint_url": moto_url}
    request = logs_request(to_log_record(current_usage(1)), to_log_record(current_usage(2, cost_usd=math.inf)))
    with _strict(tmp_path / "local", **settings) as url:
        response = httpx.post(f"{url}/v1/logs", content=request.SerializeToString(), headers=PROTOBUF)

    assert ExportLogsServiceResponse.FromString(response.content).partial_success.rejected_log_records == 1
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket="ledger")["Contents"] if o["Key"].endswith(".parquet"))
    today = dt.datetime.now(dt.UTC).date().isoformat()
    assert [k.rsplit("/", 1)[0] for k in keys] == [f"prod/quarantine/date={today}", f"prod/usage/date={today}"]
    target = open_target(DataLayout.at(tmp_path / "local"), "s3://ledger/prod", endpoint_url=moto_url)
    with connect(target) as con:
        assert con.execute("SELECT request_id, reasons FROM quarantine").fetchall() == [
            (gateway_id(2), ["cost_usd.not_finite", "cost_usd.above_price_ceiling"])
        ]
        assert con.execute("SELECT count(*) FROM usage").fetchone() == (1,)
    assert [r["request_id"] for r in read_quarantine([target])] == [gateway_id(2)]


@pytest.mark.parametrize("as_json", [False, True], ids=["protobuf", "json"])
def test_a_record_that_cannot_become_a_row_is_quarantined_as_received(tmp_path: Path, as_json: bool) -> None:
    broken = to_log_record(current_usage(2))
    kept = [kv for kv in broken.attributes if kv.key != "team"]
    del broken.attributes[:]
    broken.attributes.extend(kept)
    request = logs_request(to_log_record(current_usage(1)), broken)
    body = otlp_json(request) if as_json else request.SerializeToString()

    with _strict(tmp_path) as url, httpx.Client(base_url=url) as client:
        response = client.post("/v1/logs", content=body, headers=JSON if as_json else PROTOBUF)
        metrics = client.get("/metrics").text

    assert response.status_code == 200
    layout = DataLayout.at(tmp_path)
    assert [r["request_id"] for r in read_rows(layout, "usage")] == [gateway_id(1)]
    [row] = _quarantine(layout)
    assert (row["request_id"], row["reasons"], row["details"], row["agent_id"]) == (
        gateway_id(2),
        ["record.unreadable"],
        "missing required attribute 'team'",
        None,
    )
    assert LogRecord.FromString(row["raw_record"]) == broken
    assert 'meterline_collector_quarantine_reasons_total{rule="record.unreadable"} 1.0' in metrics
    with open_catalog(layout) as con:
        assert con.execute("SELECT count(*) FROM quarantine WHERE raw_record IS NOT NULL").fetchone() == (1,)


def test_a_fault_in_the_validator_is_a_503_and_nothing_lands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, table: Any) -> Any:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("collector.validation.RecordValidator.split", broken)
    request = logs_request(to_log_record(current_usage(1)))
    with _strict(tmp_path) as url:
        response = httpx.post(f"{url}/v1/logs", content=request.SerializeToString(), headers=PROTOBUF)

    assert (response.status_code, response.headers["retry-after"]) == (503, "5")
    assert Status.FromString(response.content).message == "could not validate the usage records (ZeroDivisionError)"
    layout = DataLayout.at(tmp_path)
    assert read_rows(layout, "usage") == [] and _quarantine(layout) == []
