"""gateway/openapi.py: a valid OpenAPI 3.1 document that names exactly the app's routes, and a
schemathesis run of it against a live gateway (in front of the mock providers) that finds no
5xx, no traceback, no provider key and no error body off the documented schema."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from openapi_spec_validator import validate as validate_openapi
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from gateway.app import create_app
from gateway.openapi import openapi_document
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, create_mock_anthropic, create_mock_openai
from meterline.config import MeterlineConfig, parse_config
from tests.servers import serve_in_thread

Case = schemathesis.Case[Any]  # the operation type is schemathesis' own
OPENAI_KEY = "sk-openai-provider-secret-openapi-4242"
ANTHROPIC_KEY = "sk-ant-provider-secret-openapi-4343"
AGENT_KEY = "agent-key-openapi-0123456"
GROUPS = ["gpt-4o-mini", "claude-haiku"]
CONFIG = """
model_list:
  - model_name: gpt-4o-mini
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: {openai}/v1
      api_key: {openai_key}
  - model_name: claude-haiku
    litellm_params:
      model: anthropic/claude-haiku-4-5
      api_base: {anthropic}
      api_key: {anthropic_key}
router_settings:
  num_retries: 0
agents:
  - id: fuzzer
    team: qa
    key: {agent_key}
"""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
FUZZ = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,  # the same cases every run: a failure here is reproducible, never a flake
)


def config(openai_url: str = "http://127.0.0.1:9", anthropic_url: str = "http://127.0.0.1:9") -> MeterlineConfig:
    text = CONFIG.format(
        openai=openai_url,
        anthropic=anthropic_url,
        openai_key=OPENAI_KEY,
        anthropic_key=ANTHROPIC_KEY,
        agent_key=AGENT_KEY,
    )
    return parse_config(text, "test", environ={})


@pytest.fixture(scope="module")
def live_gateway() -> Iterator[str]:
    openai_mock = MockBehaviour(accepted_keys={OPENAI_KEY})
    anthropic_mock = MockBehaviour(accepted_keys={ANTHROPIC_KEY})
    with (
        serve_in_thread(create_mock_openai(openai_mock)) as openai_url,
        serve_in_thread(create_mock_anthropic(anthropic_mock)) as anthropic_url,
        serve_in_thread(create_app(config(openai_url, anthropic_url), sink=InMemorySink())) as url,
    ):
        yield url


def test_document_is_valid_openapi_3_1() -> None:
    document = openapi_document(GROUPS)
    validate_openapi(document)
    assert document["openapi"].startswith("3.1")
    assert document["components"]["schemas"]["ModelGroup"]["enum"] == GROUPS


def test_document_describes_exactly_the_app_routes() -> None:
    app = create_app(config(), sink=InMemorySink())
    registered = {
        (route.path, method.lower())
        for route in app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"  # Starlette adds HEAD to every GET route
    }
    documented = {(path, method) for path, item in openapi_document(GROUPS)["paths"].items() for method in item}
    assert documented == registered


def test_gateway_serves_its_document(live_gateway: str) -> None:
    response = httpx.get(f"{live_gateway}/openapi.json")
    assert response.status_code == 200
    assert response.json() == openapi_document(GROUPS)


@pytest.mark.parametrize("path", ["/v1/auth/token", "/admin/agents"])
def test_a_body_that_is_not_utf8_is_a_400(live_gateway: str, path: str) -> None:
    # Found by the schemathesis run: routes/admin.py's parse_body let UnicodeDecodeError through (a 502).
    response = httpx.post(
        f"{live_gateway}{path}", content=b"\xff\xfe", headers={"Authorization": f"Bearer {AGENT_KEY}"}
    )
    assert response.status_code in (400, 401, 403)
    assert "Traceback" not in response.text


def no_leak(ctx: object, response: schemathesis.Response, case: Case) -> bool | None:
    """No body shows a Python traceback or a provider key."""
    text = response.text
    assert "Traceback (most recent call last)" not in text, text[:2000]
    for secret in (OPENAI_KEY, ANTHROPIC_KEY):
        assert secret not in text, f"provider key in a {response.status_code} body"
    return None


def validate(case: Case, response: schemathesis.Response) -> None:
    case.validate_response(response, checks=CHECKS, additional_checks=[no_leak])


# The aliases without /v1 run the same handlers; fuzzing the /v1 paths covers them.
schema = schemathesis.openapi.from_dict(openapi_document(GROUPS)).exclude(operation_id_regex="Unversioned$")


@schema.parametrize()
@FUZZ
def test_fuzz_with_an_agent_key(case: Case, live_gateway: str) -> None:
    response = case.call(base_url=live_gateway, headers={"Authorization": f"Bearer {AGENT_KEY}"}, timeout=30)
    validate(case, response)
    if "Authorization" in response.request.headers:  # the coverage phase also sends cases without it
        assert response.status_code != 401, response.text


@schema.parametrize()
@FUZZ
def test_fuzz_without_an_agent_key(case: Case, live_gateway: str) -> None:
    case.headers.pop("Authorization", None)
    case.headers.pop("x-api-key", None)
    response = case.call(base_url=live_gateway, timeout=30)
    validate(case, response)
    if case.operation.definition.raw.get("security") and response.request.method == case.operation.method.upper():
        assert response.status_code in (401, 403), response.text  # 403: the admin API is off
