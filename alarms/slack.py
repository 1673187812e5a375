"""Slack incoming webhook: a Block Kit message with a plain-text fallback."""

from __future__ import annotations

from alarms.message import Message
from alarms.notifier import post_json
from meterline.secret_refs import resolve

_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "critical": ":rotating_light:",
    "resolved": ":white_check_mark:",
}


def blocks(message: Message) -> dict[str, object]:
    body: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": f"{_EMOJI[message.severity]} {message.title}"[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(f"• {line}" for line in message.lines)}},
    ]
    if message.link:
        body.append({"type": "section", "text": {"type": "mrkdwn", "text": f"<{message.link}|Open the dashboard>"}})
    return {"blocks": body, "text": f"{message.title}: " + "; ".join(message.lines)}


class Slack:
    def __init__(self, name: str, webhook: str) -> None:
        self.name = name
        self._webhook = webhook

    def send(self, message: Message) -> None:
        post_json(resolve(self._webhook), blocks(message))
