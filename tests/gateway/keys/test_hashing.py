from __future__ import annotations

import logging
import re
import stat
from pathlib import Path

import pytest

from gateway.keys.hashing import KeyHasher, equal, load_secret, new_key, new_key_id, persisted_secret


def test_new_keys_are_prefixed_random_and_urlsafe() -> None:
    keys = {new_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(re.fullmatch(r"ml-[A-Za-z0-9_-]{43}", k) for k in keys)
    assert re.fullmatch(r"key_[0-9a-f]{16}", new_key_id())


def test_hash_is_keyed_hmac_sha256() -> None:
    hasher = KeyHasher(b"s" * 32)
    # HMAC-SHA256(key=b"s"*32, msg=b"ml-abc"), as `openssl dgst -sha256 -hmac` computes it
    assert hasher.hash("ml-abc") == "046fb045baef5d084bfaf9ae70b89748617df209b4945479508601b81bf3c7c8"
    assert hasher.hash("ml-abc") == KeyHasher(b"s" * 32).hash("ml-abc")
    assert hasher.hash("ml-abc") != KeyHasher(b"t" * 32).hash("ml-abc")
    assert "s" * 32 not in repr(hasher)
    with pytest.raises(ValueError, match="at least 16 bytes"):
        KeyHasher(b"short")


def test_equal_is_constant_time_compare_of_str_and_bytes() -> None:
    assert equal("abc", "abc") and equal(b"abc", "abc")
    assert not equal("abc", "abd") and not equal("abc", "abcd")


def test_generated_secret_is_persisted_once_with_mode_0600(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "key-hash.secret"
    first, created = persisted_secret(path)
    again, created_again = persisted_secret(path)
    assert (created, created_again) == (True, False)
    assert first == again and len(first) == 43
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_load_secret_logs_where_it_came_from_never_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = logging.getLogger("test.keys")
    caplog.set_level(logging.INFO)
    generated = load_secret(None, tmp_path, "key-hash.secret", "key_store.hash_secret", log)
    monkeypatch.setenv("HASH_SECRET", "configured-secret-value-0123456789")
    configured = load_secret("os.environ/HASH_SECRET", tmp_path, "x", "key_store.hash_secret", log)
    assert configured.reveal() == "configured-secret-value-0123456789"
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == (
        f"key_store.hash_secret not configured: generated and kept at {tmp_path}/secrets/key-hash.secret "
        "(mode 0600); every replica sharing the key store needs the same secret"
    )
    assert messages[1] == "key_store.hash_secret: from the configured secret reference"
    assert not any(generated.reveal() in m or "configured-secret-value" in m for m in messages)
