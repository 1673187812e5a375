"""How the exporter reaches the collector: its bearer token and, for https://, whom to trust.

`telemetry.collector_token` is a secret reference, kept live, read on every post (a rotation
reaches the next batch); `telemetry.collector_ca_file` verifies an https:// collector whose
certificate a private CA signed. A token sent over plain http:// beyond loopback is a warning.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from urllib.parse import urlsplit

from meterline.bind import is_loopback
from meterline.config import ConfigError, TelemetryConfig
from meterline.secrets import LiveSecret, SecretRegistry

log = logging.getLogger(__name__)


def collector_tls(telemetry: TelemetryConfig) -> ssl.SSLContext | None:
    """The TLS context for an https:// collector (None for http://); ConfigError for a CA file
    that is not there or not PEM."""
    if not telemetry.collector.lower().startswith("https://"):
        return None
    ca_file = telemetry.collector_ca_file
    if ca_file is None:
        return ssl.create_default_context()
    path = Path(ca_file).expanduser()
    try:
        return ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        reason = f"no file at {path}" if isinstance(exc, FileNotFoundError) else f"not a PEM CA file ({exc})"
        raise ConfigError("config", "telemetry.collector_ca_file", reason) from None


def collector_token(telemetry: TelemetryConfig, secrets: SecretRegistry) -> LiveSecret | None:
    """The live token the exporter sends, if any (resolved by the gateway's preload already)."""
    if telemetry.collector_token is None:
        return None
    host = urlsplit(telemetry.collector).hostname or ""
    if telemetry.collector.lower().startswith("http://") and not is_loopback(host):
        log.warning(
            "telemetry: the collector token is sent in clear text to %s; use https:// (collector.tls)",
            telemetry.collector,
        )
    return secrets.live(telemetry.collector_token)
