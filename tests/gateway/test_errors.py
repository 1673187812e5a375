"""Every error a client can cause gets OpenAI error JSON with the right status, never a 500."""

from __future__ import annotations

import inspect
import os
from typing import Any

import httpx
import openai
import pytest

from gateway.providers.http import failure_from_response
from gateway.providers.litellm_translate import _failure as litellm_failure
from gateway.routing.deployments import build_deployment
from gateway.telemetry.sink import InMemorySink
from meterline.config import ModelDeployment
from tests.gateway.conftest import SUPPORT_KEY, sdk

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm
from litellm.exceptions import APIConnectionError

AUTH = {"Authorization": f"Bearer {SUPPORT_KEY}"}
OK_MESSAGES = [{"role": "user", "content": "hi"}]
CHAT = "/v1/chat/completions"

CASES: list[tuple[str, str, str, dict[str, str], Any, int, str | None]] = [
    ("missing key", "POST", CHAT, {}, {"model": "demo", "messages": OK_MESSAGES}, 401, "invalid_api_key"),
    ("wrong key", "POST", CHAT, {"Authorization": "Bearer nope"}, {"model": "demo"}, 401, "invalid_api_key"),
    ("not bearer", "POST", CHAT, {"Authorization": f"Basic {SUPPORT_KEY}"}, {}, 401, "invalid_api_key"),
    ("models without key", "GET", "/v1/models", {}, None, 401, "invalid_api_key"),
    ("unknown model", "POST", CHAT, AUTH, {"model": "gpt-9", "messages": OK_MESSAGES}, 404, "model_not_found"),
    ("malformed json", "POST", CHAT, AUTH, b'{"model": "demo",', 400, None),
    ("empty body", "POST", CHAT, AUTH, b"", 400, None),
    ("json array", "POST", CHAT, AUTH, b"[1, 2]", 400, None),
    ("missing model", "POST", CHAT, AUTH, {"messages": OK_MESSAGES}, 400, "missing_required_parameter"),
    ("missing messages", "POST", CHAT, AUTH, {"model": "demo"}, 400, "missing_required_parameter"),
    ("empty messages", "POST", CHAT, AUTH, {"model": "demo", "messages": []}, 400, "missing_required_parameter"),
    ("message without role", "POST", CHAT, AUTH, {"model": "demo", "messages": [{}]}, 400, None),
    ("stream not bool", "POST", CHAT, AUTH, {"model": "demo", "messages": OK_MESSAGES, "stream": "yes"}, 400, None),
    ("unknown route", "GET", "/v1/nothing-here", AUTH, None, 404, "unknown_url"),
    ("wrong method", "GET", CHAT, AUTH, None, 405, "method_not_allowed"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "method", "path", "headers", "body", "status", "code"), CASES, ids=[c[0] for c in CASES]
)
def test_bad_input_gets_openai_error_json(
    client: httpx.Client,
    name: str,
    method: str,
    path: str,
    headers: dict[str, str],
    body: Any,
    status: int,
    code: str | None,
) -> None:
    kwargs: dict[str, Any] = {"headers": headers}
    if isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    response = client.request(method, path, **kwargs)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["code"] == code
    assert SUPPORT_KEY not in response.text


def test_authenticated_errors_are_in_the_ledger_unauthenticated_are_not(
    client: httpx.Client, sink: InMemorySink
) -> None:
    client.post(CHAT, json={"model": "demo", "messages": OK_MESSAGES})
    client.post(CHAT, headers=AUTH, json={"model": "gpt-9", "messages": OK_MESSAGES})
    [record] = sink.records
    assert (record.agent_id, record.status, record.http_status, record.error_type) == (
        "support-bot",
        "error",
        404,
        "model_not_found",
    )
    assert (record.input_tokens, record.output_tokens, record.cost_usd, record.attempts) == (0, 0, 0.0, 0)


def test_sdk_raises_the_matching_exceptions(gateway_url: str) -> None:
    with pytest.raises(openai.AuthenticationError):
        sdk(gateway_url, "wrong-key").chat.completions.create(model="demo", messages=OK_MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.NotFoundError):
        sdk(gateway_url).chat.completions.create(model="gpt-9", messages=OK_MESSAGES)  # type: ignore[arg-type]
    with pytest.raises(openai.BadRequestError):
        sdk(gateway_url).chat.completions.create(model="demo", messages=[])


def _litellm_exception(name: str) -> Exception:
    """A real LiteLLM exception of that class, built with whatever its constructor requires."""
    cls = getattr(litellm, name)
    status = {"UnprocessableEntityError": 422, "PermissionDeniedError": 403}.get(name, 500)
    offered: dict[str, Any] = {
        "message": "boom",
        "model": "m",
        "llm_provider": "openai",
        "status_code": status,
        "response": httpx.Response(status, request=httpx.Request("POST", "http://upstream.test/v1")),
        "request": httpx.Request("POST", "http://upstream.test/v1"),
    }
    params = inspect.signature(cls.__init__).parameters
    # Offer status_code and response only where required: otherwise the class's own status must stand.
    optional = {"status_code", "response"}
    wanted = {k for k, p in params.items() if k not in optional or p.default is inspect.Parameter.empty}
    exc: Exception = cls(**{k: v for k, v in offered.items() if k in wanted})
    return exc


DEPLOYMENT = build_deployment(
    0, ModelDeployment.model_validate({"model_name": "g", "litellm_params": {"model": "anthropic/claude-haiku-4-5"}})
)

# LiteLLM exception -> (retryable, status the agent sees, OpenAI error type)
LITELLM_ERRORS = [
    ("BadRequestError", False, 400, "invalid_request_error"),
    ("ContextWindowExceededError", False, 400, "invalid_request_error"),
    ("ContentPolicyViolationError", False, 400, "invalid_request_error"),
    ("UnprocessableEntityError", False, 422, "invalid_request_error"),
    ("NotFoundError", False, 404, "invalid_request_error"),
    ("AuthenticationError", False, 502, "api_error"),
    ("PermissionDeniedError", False, 502, "api_error"),
    ("RateLimitError", True, 429, "rate_limit_error"),
    ("Timeout", True, 504, "timeout"),
    ("ServiceUnavailableError", True, 503, "api_error"),
    ("APIConnectionError", True, 502, "api_error"),
    ("InternalServerError", True, 500, "api_error"),
    ("BadGatewayError", True, 502, "api_error"),
]


@pytest.mark.parametrize(
    ("name", "retryable", "status", "error_type"), LITELLM_ERRORS, ids=[e[0] for e in LITELLM_ERRORS]
)
def test_every_litellm_error_is_classified_once(name: str, retryable: bool, status: int, error_type: str) -> None:
    failure = litellm_failure(_litellm_exception(name), DEPLOYMENT)
    assert failure.retryable is retryable
    error = failure.to_client_error()
    assert (error.status_code, error.error_type) == (status, error_type)
    assert error.status_code != 500 or name == "InternalServerError"


def test_upstream_429_passes_retry_after_and_never_echoes_the_provider_key() -> None:
    secret = build_deployment(
        0,
        ModelDeployment.model_validate(
            {"model_name": "g", "litellm_params": {"model": "openai/gpt-4o", "api_key": "sk-provider-secret"}}
        ),
    )
    body = b'{"error": {"message": "bad key sk-provider-secret", "code": "rate_limit_exceeded"}}'
    failure = failure_from_response(429, body, {"retry-after": "7"}, secret)
    error = failure.to_client_error()
    assert (error.status_code, error.response_headers) == (429, {"retry-after": "7"})
    assert "sk-provider-secret" not in error.message
    assert failure.retryable


def test_a_litellm_translation_crash_is_the_clients_400_not_a_connection_error() -> None:
    try:
        try:
            message: dict[str, str] = {}
            message["content"]  # what LiteLLM hits on a message it cannot map
        except KeyError as crash:
            raise APIConnectionError(message="'content'", llm_provider="anthropic", model="m") from crash
    except APIConnectionError as wrapped:
        failure = litellm_failure(wrapped, DEPLOYMENT)
    assert (failure.status, failure.retryable) == (400, False)
    assert failure.to_client_error().status_code == 400


def test_a_real_connection_failure_stays_retryable() -> None:
    try:
        try:
            raise httpx.ConnectError("connection refused")
        except httpx.ConnectError as cause:
            raise APIConnectionError(message="refused", llm_provider="anthropic", model="m") from cause
    except APIConnectionError as wrapped:
        failure = litellm_failure(wrapped, DEPLOYMENT)
    assert (failure.kind, failure.retryable) == ("connection", True)
