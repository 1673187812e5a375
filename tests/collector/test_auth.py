"""Authenticated ingest: principals by bearer token, scopes, refusals the OTLP way (real servers)."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.logs.v1.logs_service_pb2_grpc import LogsServiceStub
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.auth import IngestAuth
from collector.settings import CollectorSettings
from meterline.config import ConfigError, IngestTokenConfig
from meterline.layout import DataLayout
from meterline.otlp_usage import to_log_record
from meterline.secrets import SecretResolutionError
from tests.collector.otlp_fixtures import logs_request, make_usage, read_rows, running_collector
from tests.conftest import free_port

GATEWAY_TOKEN = "gw-token-0123456789abcdef-secret"
AGENT_TOKEN = "agent-token-0123456789abcdef-secret"
USAGE_ONLY_TOKEN = "usage-only-0123456789abcdef-secret"
PROTOBUF = {"content-type": "application/x-protobuf"}

PRINCIPALS = (
    IngestTokenConfig(name="gateways", token="os.environ/TEST_GATEWAY_TOKEN", scopes=["usage", "spans"]),
    IngestTokenConfig(name="research-agent", token="os.environ/TEST_AGENT_TOKEN", scopes=["spans"]),
    IngestTokenConfig(name="billing-import", token="os.environ/TEST_USAGE_ONLY_TOKEN", scopes=["usage"]),
)


@pytest.fixture(autouse=True)
def _tokens(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_GATEWAY_TOKEN", GATEWAY_TOKEN)
    monkeypatch.setenv("TEST_AGENT_TOKEN", AGENT_TOKEN)
    monkeypatch.setenv("TEST_USAGE_ONLY_TOKEN", USAGE_ONLY_TOKEN)


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.DEBUG)
    yield caplog
    for token in (GATEWAY_TOKEN, AGENT_TOKEN, USAGE_ONLY_TOKEN):
        assert token not in caplog.text


def _bearer(token: str) -> dict[str, str]:
    return {**PROTOBUF, "authorization": f"Bearer {token}"}


def request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


def believable(rid: str, **overrides: object) -> LogRecord:
    """A usage record the collector's validation takes: a gateway's id, timestamps of now."""
    end = dt.datetime.now(dt.UTC)
    start = end - dt.timedelta(milliseconds=1500)
    return to_log_record(make_usage(rid, ts_start=start, ts_end=end, date=start.date(), **overrides))


def _forged(*request_ids: str) -> bytes:
    body: bytes = logs_request(*(believable(rid, cost_usd=1234.50) for rid in request_ids)).SerializeToString()
    return body


def _usage(*request_ids: str) -> bytes:
    body: bytes = logs_request(*(believable(rid) for rid in request_ids)).SerializeToString()
    return body


def _spans(count: int) -> ExportTraceServiceRequest:
    spans = [
        Span(
            trace_id=bytes.fromhex("0af7651916cd43dd8448eb211c80319c"),
            span_id=(i + 1).to_bytes(8, "big"),
            name=f"plan step {i}",
            start_time_unix_nano=1_741_944_413_000_000_000,
            end_time_unix_nano=1_741_944_414_000_000_000,
        )
        for i in range(count)
    ]
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=spans)])])


def _status(response: httpx.Response) -> status_pb2.Status:
    return status_pb2.Status.FromString(response.content)


def test_a_forged_usage_record_without_a_valid_token_is_refused_401_and_never_lands(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    far_future = dt.datetime(2500, 1, 1, tzinfo=dt.UTC)
    poisoned = logs_request(
        believable(request_id(), cost_usd=float("nan")),
        believable(request_id(), cost_usd=-50.0),
        to_log_record(make_usage(request_id(), ts_start=far_future, ts_end=far_future, date=far_future.date())),
    ).SerializeToString()
    with running_collector(tmp_path, ingest_tokens=PRINCIPALS) as url:
        missing = httpx.post(f"{url}/v1/logs", content=_forged("req-forged-1"), headers=PROTOBUF)
        nan_negative_future = httpx.post(f"{url}/v1/logs", content=poisoned, headers=PROTOBUF)
        wrong = httpx.post(f"{url}/v1/logs", content=_forged("req-forged-2"), headers=_bearer("x" * 32))
        not_bearer = httpx.post(
            f"{url}/v1/logs", content=_forged("req-forged-3"), headers={**PROTOBUF, "authorization": GATEWAY_TOKEN}
        )
        spans = httpx.post(f"{url}/v1/traces", content=_spans(2).SerializeToString(), headers=PROTOBUF)

    for response in (missing, nan_negative_future, wrong, not_bearer, spans):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert _status(response).code == 16  # UNAUTHENTICATED
    assert _status(missing).message == "missing bearer token (Authorization: Bearer <token>)"
    assert _status(wrong).message == "unknown bearer token"
    for table in ("usage", "spans", "quarantine"):
        assert read_rows(DataLayout.at(tmp_path), table) == []


def test_a_spans_only_principal_has_its_usage_records_refused_in_partial_success_and_its_spans_taken(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    with running_collector(tmp_path, ingest_tokens=PRINCIPALS) as url:
        logs = httpx.post(f"{url}/v1/logs", content=_forged("req-a", "req-b", "req-c"), headers=_bearer(AGENT_TOKEN))
        traces = httpx.post(f"{url}/v1/traces", content=_spans(4).SerializeToString(), headers=_bearer(AGENT_TOKEN))

    assert logs.status_code == 200
    partial = ExportLogsServiceResponse.FromString(logs.content).partial_success
    assert partial.rejected_log_records == 3
    assert partial.error_message == (
        "3 usage record(s) refused: principal 'research-agent' may not write usage records (it lacks scope 'usage')"
    )
    assert traces.status_code == 200
    assert not ExportTraceServiceResponse.FromString(traces.content).HasField("partial_success")
    assert read_rows(DataLayout.at(tmp_path), "usage") == []
    assert read_rows(DataLayout.at(tmp_path), "quarantine") == []  # refused by scope, not judged
    assert sorted(r["name"] for r in read_rows(DataLayout.at(tmp_path), "spans")) == [
        f"plan step {i}" for i in range(4)
    ]


def test_the_gateways_principal_writes_usage_records_and_spans(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    ids = sorted([request_id(), request_id()])
    with running_collector(tmp_path, ingest_tokens=PRINCIPALS) as url:
        logs = httpx.post(f"{url}/v1/logs", content=_usage(*ids), headers=_bearer(GATEWAY_TOKEN))
        traces = httpx.post(f"{url}/v1/traces", content=_spans(1).SerializeToString(), headers=_bearer(GATEWAY_TOKEN))
        forged_id = request_id()  # a principal may write usage records; each is still judged
        forged = httpx.post(f"{url}/v1/logs", content=_forged(forged_id), headers=_bearer(GATEWAY_TOKEN))

    assert (logs.status_code, traces.status_code, forged.status_code) == (200, 200, 200)
    assert not ExportLogsServiceResponse.FromString(logs.content).HasField("partial_success")
    assert ExportLogsServiceResponse.FromString(forged.content).partial_success.rejected_log_records == 1
    rows = read_rows(DataLayout.at(tmp_path), "usage")
    assert sorted((r["request_id"], r["cost_usd"]) for r in rows) == [(ids[0], 0.000387), (ids[1], 0.000387)]
    assert len(read_rows(DataLayout.at(tmp_path), "spans")) == 1
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "quarantine")] == [forged_id]


def test_a_usage_only_principal_is_refused_spans_with_403(tmp_path: Path, all_logs: pytest.LogCaptureFixture) -> None:
    rid = request_id()
    with running_collector(tmp_path, ingest_tokens=PRINCIPALS) as url:
        traces = httpx.post(
            f"{url}/v1/traces", content=_spans(3).SerializeToString(), headers=_bearer(USAGE_ONLY_TOKEN)
        )
        logs = httpx.post(f"{url}/v1/logs", content=_usage(rid), headers=_bearer(USAGE_ONLY_TOKEN))

    assert traces.status_code == 403
    assert _status(traces).code == 7  # PERMISSION_DENIED
    assert _status(traces).message == "principal 'billing-import' may not write spans (it lacks scope 'spans')"
    assert logs.status_code == 200
    assert read_rows(DataLayout.at(tmp_path), "spans") == []
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")] == [rid]


def test_grpc_refuses_unauthenticated_and_unpermitted_calls_with_their_codes(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    grpc_port = free_port()
    rid = request_id()
    forged = logs_request(believable(rid, cost_usd=1234.50))
    good = logs_request(believable(rid))
    with (
        running_collector(tmp_path, grpc_port=grpc_port, ingest_tokens=PRINCIPALS),
        grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel,
    ):
        logs = LogsServiceStub(channel)  # type: ignore[no-untyped-call]
        traces = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        with pytest.raises(grpc.RpcError) as missing:
            logs.Export(forged)
        with pytest.raises(grpc.RpcError) as wrong:
            logs.Export(forged, metadata=[("authorization", "Bearer " + "y" * 40)])
        with pytest.raises(grpc.RpcError) as denied:
            traces.Export(_spans(2), metadata=[("authorization", f"Bearer {USAGE_ONLY_TOKEN}")])
        partial = logs.Export(forged, metadata=[("authorization", f"Bearer {AGENT_TOKEN}")]).partial_success
        spans_ok = traces.Export(_spans(2), metadata=[("authorization", f"Bearer {AGENT_TOKEN}")])
        landed = logs.Export(good, metadata=[("authorization", f"Bearer {GATEWAY_TOKEN}")])

    assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert missing.value.details() == "missing bearer token (Authorization: Bearer <token>)"
    assert wrong.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert partial.rejected_log_records == 1
    assert "principal 'research-agent' may not write usage records" in partial.error_message
    assert not spans_ok.HasField("partial_success")
    assert not landed.HasField("partial_success")
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")] == [rid]
    assert len(read_rows(DataLayout.at(tmp_path), "spans")) == 2


def test_without_tokens_every_request_is_taken_as_before(tmp_path: Path) -> None:
    rid = request_id()
    with running_collector(tmp_path) as url:
        response = httpx.post(f"{url}/v1/logs", content=_usage(rid), headers=PROTOBUF)
    assert response.status_code == 200
    assert [r["request_id"] for r in read_rows(DataLayout.at(tmp_path), "usage")] == [rid]


def _settings(tmp_path: Path, *principals: IngestTokenConfig) -> CollectorSettings:
    return CollectorSettings(data_dir=tmp_path, ingest_tokens=principals)


def test_a_short_token_is_refused_naming_its_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SHORT_TOKEN", "abc123")
    principal = IngestTokenConfig(name="short", token="os.environ/TEST_SHORT_TOKEN", scopes=["spans"])
    with pytest.raises(ConfigError) as refused:
        IngestAuth.open(_settings(tmp_path, PRINCIPALS[0], principal), "meterline.yaml")
    assert str(refused.value) == (
        "meterline.yaml: collector.ingest_tokens[1].token: the token is shorter than 20 characters"
    )
    assert "abc123" not in str(refused.value)


def test_two_principals_sharing_a_token_are_refused(tmp_path: Path) -> None:
    twin = IngestTokenConfig(name="twin", token="os.environ/TEST_GATEWAY_TOKEN", scopes=["spans"])
    with pytest.raises(ConfigError) as refused:
        IngestAuth.open(_settings(tmp_path, PRINCIPALS[0], twin), "meterline.yaml")
    assert str(refused.value) == (
        "meterline.yaml: collector.ingest_tokens[1].token: principal 'twin' has the same token as 'gateways'"
    )


def test_an_unresolvable_token_reference_names_its_field(tmp_path: Path) -> None:
    missing = IngestTokenConfig(name="gone", token="os.environ/TEST_NOT_SET_ANYWHERE", scopes=["spans"])
    with pytest.raises(SecretResolutionError) as refused:
        IngestAuth.open(_settings(tmp_path, missing))
    assert "(at collector.ingest_tokens[0].token)" in str(refused.value)


def test_a_token_rotated_in_its_secret_is_accepted_once_read_and_the_old_one_refused(
    tmp_path: Path, all_logs: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "ingest-token"
    secret.write_text(GATEWAY_TOKEN)
    rotated = "gw-token-rotated-77f0c3a9e2b14d6d"
    principal = IngestTokenConfig(name="gateways", token=f"file://{secret}?refresh=3600", scopes=["usage", "spans"])
    statuses: list[int] = []
    with running_collector(tmp_path / "data", ingest_tokens=(principal,)) as url:
        before = httpx.post(f"{url}/v1/traces", content=_spans(1).SerializeToString(), headers=_bearer(GATEWAY_TOKEN))
        secret.write_text(rotated)
        # The first presentation of the new token starts a refresh; it is taken once that is done.
        for _ in range(500):
            response = httpx.post(f"{url}/v1/traces", content=_spans(1).SerializeToString(), headers=_bearer(rotated))
            statuses.append(response.status_code)
            if response.status_code == 200:
                break
        old = httpx.post(f"{url}/v1/traces", content=_spans(1).SerializeToString(), headers=_bearer(GATEWAY_TOKEN))

    assert before.status_code == 200
    assert statuses[-1] == 200 and set(statuses[:-1]) <= {401}
    assert old.status_code == 401
    assert rotated not in all_logs.text
