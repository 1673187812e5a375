"""DingTalk custom robot: markdown messages, signed as DingTalk documents it.

Signing (https://open.dingtalk.com/document/robots/customize-robot-security-settings): the
string `timestamp + "\\n" + secret` (timestamp in ms) is HMAC-SHA256'd with the secret as key,
base64-encoded, URL-encoded and appended to the webhook as `&timestamp=...&sign=...`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse

from alarms.message import Message
from alarms.notifier import DeliveryError, post_json
from meterline.secret_refs import resolve

_RATE_LIMITED = 130101
"""DingTalk's errcode for "sending too fast" (20 messages a minute per robot): worth retrying."""


def sign(secret: str, timestamp_ms: int) -> str:
    """The `sign` query value (already URL-encoded)."""
    digest = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return urllib.parse.quote_plus(base64.b64encode(digest))


def signed_url(webhook: str, secret: str, timestamp_ms: int) -> str:
    joiner = "&" if "?" in webhook else "?"
    return f"{webhook}{joiner}timestamp={timestamp_ms}&sign={sign(secret, timestamp_ms)}"


def markdown(message: Message) -> dict[str, object]:
    text = "\n\n".join([f"### {message.title}", *(f"- {line}" for line in message.lines)])
    if message.link:
        text += f"\n\n[Open the dashboard]({message.link})"
    return {"msgtype": "markdown", "markdown": {"title": message.title, "text": text}}


class DingTalk:
    def __init__(self, name: str, webhook: str, secret: str | None) -> None:
        self.name = name
        self._webhook = webhook
        self._secret = secret

    def send(self, message: Message) -> None:
        url = resolve(self._webhook)
        if self._secret is not None:
            url = signed_url(url, resolve(self._secret), int(time.time() * 1000))
        reply = post_json(url, markdown(message))
        try:
            body = reply.json()
        except ValueError:
            raise DeliveryError(f"not JSON: {reply.text[:200]}", transient=True) from None
        code = body.get("errcode", 0) if isinstance(body, dict) else 0
        if code != 0:
            raise DeliveryError(f"errcode {code}: {body.get('errmsg')}", transient=code == _RATE_LIMITED)
