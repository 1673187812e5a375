"""Client bodies read strictly (gateway/client_json.py): bodies that used to crash the gateway
(a 502, a dropped connection) answer 400 in the caller's protocol on every model endpoint, over
a real uvicorn server; the depth check is exact (a property test against a recursive count)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.client_json import MAX_DEPTH, _shallow, loads_client
from gateway.errors import InvalidRequest
from gateway.telemetry.sink import InMemorySink
from gateway.testing import MockBehaviour, create_mock_anthropic, create_mock_openai
from meterline.config import parse_config
from tests.servers import serve_in_thread

KEY = "agent-key-client-json-0123456789"


def nested(levels: int, leaf: str = "1") -> str:
    return "[" * levels + leaf + "]" * levels


def test_depth_limit_is_exact() -> None:
    at_limit = f'{{"a":{nested(MAX_DEPTH - 1)}}}'.encode()
    assert loads_client(at_limit)["a"] == json.loads(at_limit)["a"]
    with pytest.raises(InvalidRequest, match=f"nested more than {MAX_DEPTH} levels deep"):
        loads_client(f'{{"a":{nested(MAX_DEPTH)}}}'.encode())
    with pytest.raises(InvalidRequest, match="nested more than"):
        loads_client(nested(5000).encode())  # beyond what the standard library's parser recurses


def test_brackets_inside_strings_cannot_hide_depth() -> None:
    """A string's `]` may not close a real `[` in the byte-level check (`_shallow`)."""
    deep = nested(3)
    body = f'[["\\n\\"]\\n\\""], {deep}, ["\\n\\"[\\n\\""]]'.encode()
    assert loads_client(body, max_depth=5) == json.loads(body)
    with pytest.raises(InvalidRequest):
        loads_client(f'["]", [["]", {deep}, "["]], "["]'.encode(), max_depth=5)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": "\xff\xfe"}', "not valid UTF-8 (byte 7)"),
        (b'{"a": "\xed\xa0\x80"}', "not valid UTF-8 (byte 7)"),  # a surrogate, UTF-8 encoded
        (b'\xff\xfe{\x00"\x00}\x00', "not valid UTF-8 (byte 0)"),  # UTF-16, which json.loads(bytes) guessed
        (b'{"a": "\\ud800"}', "lone surrogate (\\ud800)"),
        (b'{"\\udc00": 1}', "lone surrogate (\\udc00)"),
        (b'{"a": ["x", {"b": "\\ud83d\\ude00\\udc00"}]}', "lone surrogate (\\udc00)"),
        (b'{"a": "\\udc00\\ud800"}', "lone surrogate (\\udc00)"),
        (b'"\\ud800"', "lone surrogate (\\ud800)"),
        (b'{"a": 1', "not valid JSON"),
    ],
)
def test_bad_bodies_are_invalid_requests(body: bytes, message: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        loads_client(body)
    assert message in raised.value.message


@pytest.mark.parametrize(
    "body",
    [
        b'{"a": "\\ud83d\\ude00 and \\uD83D\\uDE00"}',  # paired escapes (an ensure_ascii client's emoji)
        b'{"a": "\\\\ud800"}',  # a backslash, then the text "ud800"
        '{"a": "caf\u00e9 \U0001f600"}'.encode(),
        b'{"a": NaN, "b": 123456789012345678901234567890}',  # what the standard library reads, kept
    ],
)
def test_good_bodies_read_as_the_standard_library_reads_them(body: bytes) -> None:
    assert repr(loads_client(body)) == repr(json.loads(body))


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


PIECES = ["]", "[", "}", "{", '"', "\\", '\\"]', "\n]", "x", "[]", "\\u005d"]
TRICKY = st.lists(st.sampled_from(PIECES), max_size=4).map("".join)
JSON = st.recursive(
    st.none() | st.integers() | TRICKY,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(TRICKY, children, max_size=3),
    max_leaves=40,
)


@settings(max_examples=400, deadline=None)
@given(value=JSON, limit=st.integers(1, 8), ascii_only=st.booleans())
def test_depth_check_agrees_with_a_recursive_count(value: Any, limit: int, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    if _shallow(body, limit):
        assert depth(value) <= limit  # the byte-level proof is sound
    if depth(value) > limit:
        with pytest.raises(InvalidRequest, match="nested more than"):
            loads_client(body, max_depth=limit)
    else:
        assert loads_client(body, max_depth=limit) == value


CONFIG = """
model_list:
  - model_name: chat
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{openai}/v1", api_key: sk-mock}}
  - model_name: claude
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{anthropic}", api_key: sk-ant-mock}}
agents:
  - {{id: json-bot, team: qa, key: {key}}}
"""


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[httpx.Client, InMemorySink]]:
    openai_mock = MockBehaviour(accepted_keys={"sk-mock"})
    anthropic_mock = MockBehaviour(accepted_keys={"sk-ant-mock"})
    sink = InMemorySink()
    with (
        serve_in_thread(create_mock_openai(openai_mock)) as openai_url,
        serve_in_thread(create_mock_anthropic(anthropic_mock)) as anthropic_url,
    ):
        config = parse_config(CONFIG.format(openai=openai_url, anthropic=anthropic_url, key=KEY), "t", environ={})
        with serve_in_thread(create_app(config, sink=sink)) as url, httpx.Client(base_url=url, timeout=30) as http:
            yield http, sink


TEXT = '{"type":"text","text":"hi"}'
# endpoint -> a valid body around a hole (`@`) where each case puts its bad part
ENDPOINTS = {
    "/v1/chat/completions": '{"model":"chat","messages":[{"role":"user","content":@}]}',
    "/v1/completions": '{"model":"chat","prompt":@}',
    "/v1/embeddings": '{"model":"chat","input":@}',
    "/v1/responses": '{"model":"chat","input":@}',
    "/v1/messages": '{"model":"claude","max_tokens":10,"messages":[{"role":"user","content":@}]}',
}
CASES: dict[str, tuple[Callable[[str], bytes], str]] = {
    "5,000-deep JSON": (lambda body: body.replace("@", nested(5000)).encode(), "nested more than 128"),
    "3,000-deep content array": (lambda body: body.replace("@", nested(3000, TEXT)).encode(), "nested more than 128"),
    "130-deep content array": (lambda body: body.replace("@", nested(130, TEXT)).encode(), "nested more than 128"),
    "invalid UTF-8": (lambda body: body.replace("@", '"\xff"').encode("latin-1"), "not valid UTF-8"),
    "UTF-8 of a surrogate": (lambda body: body.encode().replace(b"@", b'"\xed\xa0\x80"'), "not valid UTF-8"),
    "lone surrogate": (lambda body: body.replace("@", '"\\ud800"').encode(), "lone surrogate (\\ud800)"),
    "lone surrogate as model": (
        lambda body: body.replace('"chat"', '"\\ud800"').replace('"claude"', '"\\udfff"').replace("@", '"hi"').encode(),
        "lone surrogate",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_bad_bodies_get_400_in_the_callers_protocol(
    served: tuple[httpx.Client, InMemorySink], endpoint: str, case: str
) -> None:
    http, sink = served
    sink.records.clear()
    build, message = CASES[case]
    response = http.post(
        endpoint,
        content=build(ENDPOINTS[endpoint]),
        headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 400
    body = response.json()
    if endpoint == "/v1/messages":
        assert set(body) == {"type", "error"}
        assert (body["type"], body["error"]["type"]) == ("error", "invalid_request_error")
    else:
        assert set(body["error"]) == {"message", "type", "param", "code"}
        assert body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]
    # Recorded as every other 400 of an authenticated agent.
    [record] = sink.records
    assert (record.agent_id, record.status, record.http_status, record.error_type) == (
        "json-bot",
        "error",
        400,
        "InvalidRequest",
    )


def test_the_server_keeps_serving(served: tuple[httpx.Client, InMemorySink]) -> None:
    http, _ = served
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi \U0001f600"}]}
    response = http.post(
        "/v1/chat/completions",
        content=json.dumps(body).encode(),  # ensure_ascii: the emoji as a surrogate pair of escapes
        headers={"Authorization": f"Bearer {KEY}", "content-type": "application/json"},
    )
    assert response.status_code == 200
