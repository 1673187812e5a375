"""gateway/json_codec.py: orjson's output where it can, the standard library's where it cannot."""

from __future__ import annotations

import json

import pytest

from gateway.json_codec import dumps, dumps_sorted, loads


def test_dumps_is_compact_utf8_like_the_standard_library() -> None:
    data = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "héllo 你好"}], "n": 2, "t": 0.5}
    assert dumps(data) == json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def test_integers_beyond_64_bits_are_kept_exact() -> None:
    assert dumps({"seed": 10**30}) == b'{"seed":1000000000000000000000000000000}'
    assert dumps_sorted({"b": 10**30, "a": 1}) == '{"a":1,"b":1000000000000000000000000000000}'


@pytest.mark.parametrize(
    "block",
    [
        {"prompt_tokens": 8, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 3}},
        {"input_tokens": 1, "note": "é"},
    ],
)
def test_dumps_sorted_matches_the_ledgers_usage_raw_format(block: dict[str, object]) -> None:
    assert dumps_sorted(block) == json.dumps(block, separators=(",", ":"), sort_keys=True)


def test_loads_raises_value_error_on_bad_json() -> None:
    assert loads(b'{"usage":{"prompt_tokens":8}}') == {"usage": {"prompt_tokens": 8}}
    with pytest.raises(ValueError):
        loads(b"{not json")
