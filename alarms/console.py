"""Console channel: one log line per alarm on this process's stderr; needs no network.

What `meterline up`'s embedded defaults send to, so a first run shows an alarm in the
terminal without a chat to deliver to. `WARNING` for warnings, `ERROR` for critical alarms,
`INFO` for resolutions.
"""

from __future__ import annotations

import logging

from alarms.message import Message

log = logging.getLogger("alarms.console")

LEVELS = {"info": logging.INFO, "resolved": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR}


def line(name: str, message: Message) -> str:
    """`alarm (<channel>): <title> | <line> | ... | <link>`, one line whatever the message holds."""
    parts = [message.title, *message.lines, *([message.link] if message.link else [])]
    return f"alarm ({name}): " + " | ".join(part.replace("\n", " ") for part in parts)


class Console:
    def __init__(self, name: str) -> None:
        self.name = name

    def send(self, message: Message) -> None:
        log.log(LEVELS.get(message.severity, logging.WARNING), "%s", line(self.name, message))
