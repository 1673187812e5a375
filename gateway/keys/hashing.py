"""Keys are random, shown once and kept only as HMAC-SHA256(server secret, key).

The server secret is `key_store.hash_secret` (a secret reference) or, when that is not set, one
generated on first start and kept at `<data_dir>/secrets/key-hash.secret` (mode 0600) so that
keys survive restarts. Every process sharing a store must share the secret.

A configured secret rotates like any other reference (docs/secrets.md, "The key-hashing
secret"): `RotatingHasher` hashes with the current secret and, for `key_store.rotation_grace_seconds`
after a rotation, also checks presented keys against the previous one; a key found that way is
stored again under the current secret (the directory has its plaintext at that moment).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from gateway.keys.rotating import RotatingSecret
from meterline.secrets import LiveSecret, live_secret

KEY_PREFIX = "ml-"
SECRETS_DIR = "secrets"
SECRET_BYTES = 32

_log = logging.getLogger("gateway.keys")


def new_key() -> str:
    """A fresh agent key: `ml-` and 32 random bytes, URL-safe base64."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def new_key_id() -> str:
    """A public, non-secret handle for a key (what lists and the admin API show)."""
    return "key_" + secrets.token_hex(8)


def equal(a: str | bytes, b: str | bytes) -> bool:
    """Constant-time comparison of two secrets."""
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


class KeyHasher:
    """The keyed hash that is the only form of a key the store and the directory hold."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the key hash secret must be at least 16 bytes")
        self._secret = secret

    def hash(self, key: str) -> str:
        return hmac.new(self._secret, key.encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "KeyHasher(<secret>)"

    def previous(self) -> KeyHasher | None:
        """A fixed secret has no previous one."""
        return None


class RotatingHasher:
    """The current KeyHasher of a rotating secret, and the previous one during its grace."""

    __slots__ = ("_current", "_listeners", "_previous", "_secret")

    def __init__(self, secret: RotatingSecret) -> None:
        self._secret = secret
        self._current = KeyHasher(secret.current.encode())
        self._previous: KeyHasher | None = None
        self._listeners: list[Callable[[], None]] = []
        secret.on_change(self._rotated)

    def __repr__(self) -> str:
        return "RotatingHasher(<secret>)"

    def hash(self, key: str) -> str:
        return self._current.hash(key)

    def previous(self) -> KeyHasher | None:
        """The hasher of the secret the last rotation replaced, while its grace lasts."""
        return self._previous if self._secret.previous() is not None else None

    def on_change(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def _rotated(self) -> None:
        try:
            current = KeyHasher(self._secret.current.encode())
        except ValueError:
            _log.error("the new key_store.hash_secret is shorter than 16 bytes; keys stay hashed with the old one")
            return
        self._previous, self._current = self._current, current
        for listener in self._listeners:
            listener()


Hasher = KeyHasher | RotatingHasher
"""What hashes keys for the store: a fixed secret (tests, tools) or a rotating one (the gateway)."""


def persisted_secret(path: Path) -> tuple[bytes, bool]:
    """The secret kept at `path`, created (mode 0600, exclusively) when absent.

    Returns the secret and whether this call created it. Two processes starting together
    agree: the loser of the exclusive create reads the winner's file.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        value = path.read_text(encoding="ascii").strip()
        if not value:
            raise ValueError(f"{path} is empty; delete it to generate a new secret") from None
        return value.encode(), False
    value = secrets.token_urlsafe(SECRET_BYTES)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(value + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return value.encode(), True


def load_secret(reference: str | None, data_dir: Path, filename: str, setting: str, log: logging.Logger) -> LiveSecret:
    """The configured secret (`setting`, a secret reference, live), else the persisted generated
    one (fixed). Logs where the secret came from, never its value.
    """
    if reference:
        log.info("%s: from the configured secret reference", setting)
        return live_secret(reference)
    path = data_dir / SECRETS_DIR / filename
    secret, created = persisted_secret(path)
    log.info(
        "%s not configured: %s %s (mode 0600); every replica sharing the key store needs the same secret",
        setting,
        "generated and kept at" if created else "using the one kept at",
        path,
    )
    return LiveSecret.fixed(secret.decode("ascii"))
