"""Generic JSON webhook: the message as a JSON object; an optional secret signs the body.

With a secret, `X-Meterline-Signature: sha256=<hex HMAC-SHA256 of the body>` lets the
receiver check the sender.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from alarms.message import Message
from alarms.notifier import TIMEOUT_SECONDS, DeliveryError
from meterline.secret_refs import resolve


def payload(message: Message) -> dict[str, object]:
    return {
        "title": message.title,
        "severity": message.severity,
        "text": "\n".join(message.lines),
        "link": message.link,
        "fields": message.fields,
    }


class Webhook:
    def __init__(self, name: str, url: str, secret: str | None) -> None:
        self.name = name
        self._url = url
        self._secret = secret

    def send(self, message: Message) -> None:
        body = json.dumps(payload(message), sort_keys=True).encode()
        headers = {"content-type": "application/json"}
        if self._secret is not None:
            mac = hmac.new(resolve(self._secret).encode(), body, hashlib.sha256).hexdigest()
            headers["x-meterline-signature"] = f"sha256={mac}"
        try:
            response = httpx.post(resolve(self._url), content=body, headers=headers, timeout=TIMEOUT_SECONDS)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=True) from None
        if response.status_code >= 400:
            transient = response.status_code == 429 or response.status_code >= 500
            raise DeliveryError(f"HTTP {response.status_code}", transient=transient)
