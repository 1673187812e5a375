"""The bind rule for servers without their own authentication: loopback, or an explicit allow.

The collector without ingest tokens and the dashboard (no login yet) let anyone who reaches
them write the ledger or read the spend. They bind loopback addresses only, unless the config
says `allow_unauthenticated: true`, which is logged as a warning at every start.
"""

from __future__ import annotations

import ipaddress
import logging
import socket

from meterline.config import ConfigError

log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """True when every address `host` stands for is a loopback address (`0.0.0.0`, `::` and
    the empty host mean every interface, so not)."""
    if host in ("", "0.0.0.0", "::", "*"):
        return False
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False  # binding it will fail anyway; an unknown name is not allowed as loopback
    return bool(infos) and all(ipaddress.ip_address(str(info[4][0])).is_loopback for info in infos)


def require_loopback_or_allowed(
    host: str, *, server: str, risk: str, remedy: str, setting: str, allowed: bool, source: str
) -> None:
    """Return when `host` is loopback or `allowed` (with a loud warning); otherwise raise
    ConfigError naming `setting`. `risk`: what anyone who reaches the server could do."""
    if is_loopback(host):
        return
    if allowed:
        log.warning("UNAUTHENTICATED %s on %s (%s: true): anyone who can reach it %s", server, host, setting, risk)
        return
    raise ConfigError(
        source,
        setting,
        f"refusing to serve the {server} on {host}, not a loopback address, without authentication "
        f"(anyone who could reach it {risk}); {remedy}, bind 127.0.0.1, or set {setting}: true",
    )
