"""The `Notifier` protocol, delivery with retries and backoff, and channels built from config."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

import httpx

from alarms.message import Message
from meterline.config import AlertChannel

TIMEOUT_SECONDS = 10.0


class DeliveryError(Exception):
    """A channel refused or could not take a message; `transient` ones are worth retrying."""

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class Notifier(Protocol):
    """One chat channel. `send` delivers one message or raises `DeliveryError`."""

    name: str

    def send(self, message: Message) -> None: ...


def post_json(url: str, body: object) -> httpx.Response:
    """POST `body`; network errors, 429 and 5xx are transient, other 4xx terminal."""
    try:
        response = httpx.post(url, json=body, timeout=TIMEOUT_SECONDS)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"{type(exc).__name__}: {exc}", transient=True) from None
    if response.status_code == 429 or response.status_code >= 500:
        raise DeliveryError(f"HTTP {response.status_code}", transient=True)
    if response.status_code >= 400:
        raise DeliveryError(f"HTTP {response.status_code}: {response.text[:200]}", transient=False)
    return response


def deliver(
    notifier: Notifier,
    message: Message,
    attempts: int = 3,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[str | None, int]:
    """Send with up to `attempts` tries (waits backoff, 2 x backoff, ...); returns (error or None,
    tries made). Never raises: a channel that is down must not stop the others."""
    error: str | None = None
    for attempt in range(1, attempts + 1):
        try:
            notifier.send(message)
            return None, attempt
        except DeliveryError as exc:
            error = str(exc)
            if not exc.transient:
                return error, attempt
        except Exception as exc:  # noqa: BLE001 - a secret that does not resolve, a bug in one channel
            return f"{type(exc).__name__}: {exc}", attempt
        if attempt < attempts:
            sleep(backoff_seconds * 2 ** (attempt - 1))
    return error, attempts


def build_notifier(name: str, channel: AlertChannel) -> Notifier:
    """The notifier for a configured channel (imports only the module its type needs)."""
    if channel.type == "console":
        from alarms.console import Console

        return Console(name)
    webhook = channel.webhook
    if webhook is None:  # refused at load (AlertChannel); here for a channel built in code
        raise ValueError(f"alerts.channels.{name}.webhook: a {channel.type} channel needs its webhook URL")
    if channel.type == "dingtalk":
        from alarms.dingtalk import DingTalk

        return DingTalk(name, webhook, channel.secret)
    if channel.type == "slack":
        from alarms.slack import Slack

        return Slack(name, webhook)
    from alarms.webhook import Webhook

    return Webhook(name, webhook, channel.secret)
