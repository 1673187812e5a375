"""Provider answers never carry a credential to the agent (gateway/scrubbing.py), on both paths.

Unit cases for the patterns, then a gateway in front of the mock OpenAI and Anthropic providers
whose provider keys live in files and rotate once, so the gateway holds two versions of each.
Providers echo the current version, the previous one and credential-shaped strings in every
field of their error bodies (message, code, param, type, nested objects and arrays), before a
stream and in the middle of one; no response, usage record or span carries any of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from gateway.app import create_app
from gateway.scrubbing import MASK, scrub_json, scrub_text
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, ScriptedFailure, create_mock_anthropic, create_mock_openai
from meterline.config import parse_config
from tests.servers import serve_in_thread

# Provider keys that look like nothing in particular: only knowing the values masks them.
OPENAI_PREVIOUS, OPENAI_CURRENT = "opal-previous-4c1d8e2a", "opal-current-7f3e9b10"
ANTHROPIC_PREVIOUS, ANTHROPIC_CURRENT = "amber-previous-91ab3c", "amber-current-52de7f"
# Other people's credentials, by shape alone.
SHAPED = {
    "openai": "sk-proj-Zx81kQm2Lp0aVb7Nc4Rt",
    "anthropic": "sk-ant-api03-Qw9eRt7yUi5oP3aS",
    "aws": "AKIAIOSFODNN7EXAMPLE",
    "bearer": "Bearer eyJhbGciOiJIUzI1NiJ9.payload9.sig",
    "after key": 'api_key="f8a9b7c6d5e4f3a2b1c0d9e8"',
}
AGENT_KEY = "agent-key-scrubbing-0123456789"
PATHS = {"direct": "chat", "litellm": "chat-litellm"}
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Incorrect API key provided: sk-provider-redact-1111aaaa.", f"Incorrect API key provided: {MASK}."),
        ("code sk-ant-api03-abcdefghijkl", f"code {MASK}"),
        ("id AKIAIOSFODNN7EXAMPLE here", f"id {MASK} here"),
        ("Authorization: Bearer abc.def-ghi12345", f"Authorization: Bearer {MASK}"),
        ("api_key=f8a9b7c6d5e4f3a2b1c0d9e8", f"api_key={MASK}"),
        ('"key": "ya29a0AfH6SMBx3jk45kdf9d8f"', f'"key": "{MASK}"'),
        ("AIzaSyA1234567890abcdefghijklmnopqrstuv", MASK),
        # Kept: ordinary error text, identifiers without digits, a URL after "key".
        ("Rate limit reached for requests", "Rate limit reached for requests"),
        ("token usage_limit_exceeded_for_this_org", "token usage_limit_exceeded_for_this_org"),
        (
            "You can find your API key at https://platform.openai.com/account/api-keys.",
            "You can find your API key at https://platform.openai.com/account/api-keys.",
        ),
        ("context_length_exceeded", "context_length_exceeded"),
    ],
)
def test_credential_shapes_are_masked(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_held_values_are_masked_longest_first() -> None:
    held = ("opal-current-7f3e9b10-long", "opal-current-7f3e9b10")
    assert scrub_text("a opal-current-7f3e9b10-long b opal-current-7f3e9b10", held) == f"a {MASK} b {MASK}"
    assert scrub_text("the key x", ("x",)) == "the key x"  # too short to mask by value


def test_every_string_of_a_json_value_is_scrubbed() -> None:
    value = {"error": {"code": "opal", "param": None, "n": 3, "opal": [{"deep": ["opal is here"]}]}}
    assert scrub_json(value, ("opal",)) == value  # shorter than MIN_SECRET_LENGTH: kept
    held = ("opal-current-7f3e9b10",)
    value = {"error": {"code": held[0], "opal-current-7f3e9b10": [{"deep": [f"x {held[0]}"]}], "n": 3}}
    assert scrub_json(value, held) == {"error": {"code": MASK, MASK: [{"deep": [f"x {MASK}"]}], "n": 3}}


CONFIG = """
model_list:
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{openai}/v1", api_key: "file://{openai_key}"}}
  - model_name: chat-litellm
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{openai}/v1", api_key: "file://{openai_key}"}}
    model_info: {{meterline_upstream: litellm}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{anthropic}", api_key: "file://{anthropic_key}"}}
router_settings: {{num_retries: 0}}
agents:
  - {{id: scrub-bot, team: qa, key: {agent_key}}}
"""


@dataclass
class Stack:
    http: httpx.Client
    openai: MockBehaviour
    anthropic: MockBehaviour
    sink: InMemorySink
    seen: list[str]

    def chat(self, path: str, stream: bool = False) -> httpx.Response:
        body = {"model": PATHS[path], "messages": MESSAGES, "stream": stream}
        response = self.http.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {AGENT_KEY}"})
        self.seen.append(response.text)
        return response

    def messages(self, group: str, stream: bool = False) -> httpx.Response:
        body = {"model": group, "messages": MESSAGES, "max_tokens": 20, "stream": stream}
        response = self.http.post("/v1/messages", json=body, headers={"x-api-key": AGENT_KEY})
        self.seen.append(response.text)
        return response


@pytest.fixture(scope="module")
def rotated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The servers, once both provider keys have rotated: the gateway holds two versions of each."""
    keys = tmp_path_factory.mktemp("keys")
    (keys / "openai").write_text(OPENAI_PREVIOUS)
    (keys / "anthropic").write_text(ANTHROPIC_PREVIOUS)
    openai_mock = MockBehaviour(accepted_keys={OPENAI_PREVIOUS})
    anthropic_mock = MockBehaviour(accepted_keys={ANTHROPIC_PREVIOUS})
    sink = InMemorySink()
    with (
        serve_in_thread(create_mock_openai(openai_mock)) as openai_url,
        serve_in_thread(create_mock_anthropic(anthropic_mock)) as anthropic_url,
    ):
        text = CONFIG.format(
            openai=openai_url,
            anthropic=anthropic_url,
            openai_key=keys / "openai",
            anthropic_key=keys / "anthropic",
            agent_key=AGENT_KEY,
        )
        app = create_app(parse_config(text, "scrubbing.yaml", environ={}), sink=sink)
        with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=30) as http:
            stack = Stack(http, openai_mock, anthropic_mock, sink, [])
            assert stack.chat("direct").status_code == 200
            assert stack.messages("claude").status_code == 200
            # Rotation: the providers now take only the new keys; a 401 makes the gateway refresh.
            (keys / "openai").write_text(OPENAI_CURRENT)
            (keys / "anthropic").write_text(ANTHROPIC_CURRENT)
            openai_mock.accepted_keys = {OPENAI_CURRENT}
            anthropic_mock.accepted_keys = {ANTHROPIC_CURRENT}
            assert stack.chat("direct").status_code == 200
            assert stack.messages("claude").status_code == 200
            assert [r.attempts for r in sink.records[-2:]] == [2, 2]  # refused, refreshed, retried
            yield stack


@pytest.fixture
def stack(rotated: Stack) -> Stack:
    for mock in (rotated.openai, rotated.anthropic):
        mock.failures.clear()
        mock.stream_error = None
    rotated.sink.records.clear()
    rotated.sink.spans.clear()
    rotated.seen.clear()
    return rotated


SECRETS = {
    "current": OPENAI_CURRENT,
    "previous": OPENAI_PREVIOUS,
    **{f"shaped {name}": value for name, value in SHAPED.items()},
}
EVERYTHING = [OPENAI_CURRENT, OPENAI_PREVIOUS, ANTHROPIC_CURRENT, ANTHROPIC_PREVIOUS, *SHAPED.values()]
BARE_SHAPED = ["sk-proj-Zx81kQm2Lp0aVb7Nc4Rt", "sk-ant-api03-Qw9eRt7yUi5oP3aS", "AKIAIOSFODNN7EXAMPLE",
               "eyJhbGciOiJIUzI1NiJ9.payload9.sig", "f8a9b7c6d5e4f3a2b1c0d9e8"]  # fmt: skip


def leaky_error(secret: str) -> dict[str, Any]:
    """An OpenAI error body quoting `secret` in every field, and deeper."""
    return {
        "error": {
            "message": f"The key {secret} cannot be used",
            "type": f"invalid_request_error ({secret})",
            "param": secret,
            "code": secret,
            "details": {"sent": [secret, {"header": f"Authorization: {secret}"}]},
        }
    }


def assert_nothing_leaked(stack: Stack, **more: str) -> None:
    places = {
        "responses": "\n".join(stack.seen),
        "records": repr(stack.sink.records),
        "spans": repr(stack.sink.spans),
        **more,
    }
    found = {(where, s) for where, text in places.items() for s in [*EVERYTHING, *BARE_SHAPED] if s in text}
    assert found == set()


@pytest.mark.parametrize("secret", list(SECRETS))
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", list(PATHS))
def test_error_fields_never_carry_a_key(
    stack: Stack,
    path: str,
    stream: bool,
    secret: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.DEBUG)
    stack.openai.fail_next(ScriptedFailure(400, body=leaky_error(SECRETS[secret])))
    response = stack.chat(path, stream=stream)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert MASK in error["message"]
    assert error["code"] is None  # a code that quoted a credential is dropped
    assert stack.sink.records[0].error_type == "upstream_http_400"
    out = capfd.readouterr()
    assert_nothing_leaked(stack, logs=caplog.text, output=out.out + out.err)


@pytest.mark.parametrize("secret", list(SECRETS))
@pytest.mark.parametrize("path", list(PATHS))
def test_error_event_mid_stream_never_carries_a_key(stack: Stack, path: str, secret: str) -> None:
    event = b"data: " + json.dumps(leaky_error(SECRETS[secret])).encode() + b"\n\n"
    stack.openai.stream_error = (2, event)
    response = stack.chat(path, stream=True)
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in response.text.split("\n\n") if line.startswith("data: {")]
    assert len(events) == 3 and "error" in events[-1]  # two chunks relayed, then the gateway's error event
    assert MASK in events[-1]["error"]["message"]
    record = stack.sink.records[0]
    assert (record.status, record.http_status, record.error_type) == ("error", 500, "upstream_http_500")
    assert_nothing_leaked(stack)


ANTHROPIC_SECRETS = {"current": ANTHROPIC_CURRENT, "previous": ANTHROPIC_PREVIOUS, "shaped": SHAPED["anthropic"]}


def leaky_anthropic_error(secret: str) -> dict[str, Any]:
    return {
        "type": "error",
        "error": {"type": "invalid_request_error", "message": f"invalid x-api-key {secret}", "key": [secret]},
        "request_id": secret,
    }


@pytest.mark.parametrize("secret", list(ANTHROPIC_SECRETS))
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_errors_never_carry_a_key(stack: Stack, stream: bool, secret: str) -> None:
    stack.anthropic.fail_next(ScriptedFailure(400, body=leaky_anthropic_error(ANTHROPIC_SECRETS[secret])))
    response = stack.messages("claude", stream=stream)
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["error"]["type"]) == ("error", "invalid_request_error")
    assert MASK in body["error"]["message"]
    assert_nothing_leaked(stack)


@pytest.mark.parametrize("secret", list(ANTHROPIC_SECRETS))
def test_anthropic_error_event_mid_stream_never_carries_a_key(stack: Stack, secret: str) -> None:
    error = leaky_anthropic_error(ANTHROPIC_SECRETS[secret])
    error["error"]["type"] = "overloaded_error"
    stack.anthropic.stream_error = (2, b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    response = stack.messages("claude", stream=True)
    assert response.status_code == 200
    frames = [f for f in response.text.split("\n\n") if f]
    assert [f.split("\n")[0] for f in frames] == ["event: message_start", "event: content_block_start", "event: error"]
    last = json.loads(frames[-1].split("\n")[1][6:])
    assert (last["type"], last["error"]["type"]) == ("error", "overloaded_error")
    assert MASK in last["error"]["message"]
    assert_nothing_leaked(stack)


@pytest.mark.parametrize("secret", list(SECRETS))
@pytest.mark.parametrize("stream", [False, True])
def test_messages_translated_by_litellm_never_carry_a_key(stack: Stack, stream: bool, secret: str) -> None:
    """/v1/messages on an OpenAI group: LiteLLM's translation, Anthropic's error shape."""
    stack.openai.fail_next(ScriptedFailure(400, body=leaky_error(SECRETS[secret])))
    response = stack.messages("chat", stream=stream)
    assert response.status_code == 400
    body = response.json()
    assert (body["type"], body["error"]["type"]) == ("error", "invalid_request_error")
    assert_nothing_leaked(stack)


ENDPOINT_BODIES = {
    "/v1/completions": {"prompt": "hi"},
    "/v1/embeddings": {"input": "hi"},
    "/v1/responses": {"input": "hi"},
}


@pytest.mark.parametrize("secret", ["current", "previous", "shaped openai"])
@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("endpoint", list(ENDPOINT_BODIES))
def test_other_endpoints_never_carry_a_key(stack: Stack, endpoint: str, path: str, secret: str) -> None:
    stack.openai.fail_next(ScriptedFailure(400, body=leaky_error(SECRETS[secret])))
    body = {"model": PATHS[path], **ENDPOINT_BODIES[endpoint]}
    response = stack.http.post(endpoint, json=body, headers={"Authorization": f"Bearer {AGENT_KEY}"})
    stack.seen.append(response.text)
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert_nothing_leaked(stack)


@pytest.mark.parametrize("secret", ["current", "previous", "shaped openai"])
@pytest.mark.parametrize("path", list(PATHS))
def test_responses_error_event_mid_stream_never_carries_a_key(stack: Stack, path: str, secret: str) -> None:
    leaked = SECRETS[secret]
    error = {"type": "error", "code": leaked, "message": f"key {leaked} refused", "param": None, "sequence_number": 2}
    stack.openai.stream_error = (2, b"event: error\ndata: " + json.dumps(error).encode() + b"\n\n")
    body = {"model": PATHS[path], "input": "hi", "stream": True}
    response = stack.http.post("/v1/responses", json=body, headers={"Authorization": f"Bearer {AGENT_KEY}"})
    stack.seen.append(response.text)
    assert response.status_code == 200
    last = response.text.rstrip().split("\n\n")[-1]
    assert last.startswith("event: error\n")
    error = json.loads(last.split("\n")[1][6:])
    assert error["type"] == "error" and error["message"].startswith("upstream provider error: ")
    record = stack.sink.records[0]  # the same failure on both paths
    assert (record.status, record.http_status, record.error_type) == ("error", 500, "upstream_http_500")
    assert_nothing_leaked(stack)
