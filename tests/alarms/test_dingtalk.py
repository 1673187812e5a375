"""DingTalk signing exactly as DingTalk documents it (open.dingtalk.com, custom robot security
settings): string_to_sign = timestamp + "\\n" + secret; HmacSHA256 keyed by the secret; Base64;
then URL-encoded; sent as the `timestamp` and `sign` query parameters."""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse

from alarms.dingtalk import markdown, sign, signed_url
from alarms.message import Message

SECRET = "SEC0123456789abcdef"
TIMESTAMP = 1_700_000_000_000


def documented_sign(timestamp: int, secret: str) -> str:
    """DingTalk's Python sample, step by step."""
    secret_enc = secret.encode("utf-8")
    string_to_sign_enc = f"{timestamp}\n{secret}".encode()
    hmac_code = hmac.new(secret_enc, string_to_sign_enc, digestmod=hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(hmac_code))


def test_sign_matches_the_documented_algorithm() -> None:
    assert sign(SECRET, TIMESTAMP) == documented_sign(TIMESTAMP, SECRET)


def test_sign_is_url_encoded_base64_of_a_sha256_mac() -> None:
    value = sign(SECRET, TIMESTAMP)

    decoded = base64.b64decode(urllib.parse.unquote_plus(value), validate=True)
    assert len(decoded) == 32  # SHA-256
    assert not set("+/=") & set(value)  # base64's specials arrive percent-encoded


def test_the_signed_url_keeps_the_access_token_and_adds_timestamp_and_sign() -> None:
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=abc", SECRET, TIMESTAMP)

    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    assert query == {
        "access_token": ["abc"],
        "timestamp": [str(TIMESTAMP)],
        "sign": [urllib.parse.unquote_plus(documented_sign(TIMESTAMP, SECRET))],
    }
    assert signed_url("https://example.com/hook", SECRET, TIMESTAMP).startswith("https://example.com/hook?timestamp=")


def test_markdown_message_shape() -> None:
    body = markdown(Message("Budget b: 50% crossed", ["Spent: $1.00"], "warning", "https://d.example/?scope=total"))

    assert body == {
        "msgtype": "markdown",
        "markdown": {
            "title": "Budget b: 50% crossed",
            "text": "### Budget b: 50% crossed\n\n- Spent: $1.00\n\n[Open the dashboard](https://d.example/?scope=total)",
        },
    }
