"""vault:// against a local server that follows Vault's KV v2, AppRole, Kubernetes and token
renewal API (fake_vault.py): paths, headers, JSON shapes, versions, an expiring token."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from meterline.config import SecretsConfig, VaultConfig
from meterline.secrets import SecretRegistry, SecretResolutionError, parse_reference
from meterline.secrets.vault import VaultBackend
from tests.meterline.secrets.fake_vault import FakeVault, Seen
from tests.servers import serve_in_thread

REFERENCE = "vault://secret/meterline#openai"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


OPEN: list[VaultBackend] = []


@pytest.fixture
def vault() -> Iterator[tuple[FakeVault, str]]:
    fake = FakeVault(namespace="team-a")
    fake.write("secret/meterline", {"openai": "sk-vault-one", "dingtalk_url": "https://oapi.example/robot"})
    with serve_in_thread(fake.app()) as url:
        yield fake, url
        while OPEN:
            OPEN.pop().close()


def backend(url: str, clock: Clock | None = None, **settings: str) -> VaultBackend:
    config = VaultConfig.model_validate({"address": url, "namespace": "team-a", **settings})
    created = VaultBackend(config, clock=clock or Clock())
    OPEN.append(created)
    return created


def fetch(b: VaultBackend, reference: str = REFERENCE) -> tuple[str, str | None]:
    found = b.fetch(parse_reference(reference))
    return found.value, found.version


def reads(fake: FakeVault) -> list[Seen]:
    return [r for r in fake.requests if r.method == "GET"]


def test_token_auth_reads_kv_v2_with_token_and_namespace_headers(vault: tuple[FakeVault, str]) -> None:
    fake, url = vault
    b = backend(url, token="root-token")
    assert fetch(b) == ("sk-vault-one", "1")
    (seen,) = fake.requests
    assert (seen.method, seen.path, seen.query) == ("GET", "/v1/secret/data/meterline", "")
    assert (seen.headers["x-vault-token"], seen.headers["x-vault-namespace"]) == ("root-token", "team-a")
    found = b.fetch(parse_reference(REFERENCE))
    assert found.created_at is not None and found.created_at.isoformat() == "2026-01-02T03:04:05.123456+00:00"


def test_versions(vault: tuple[FakeVault, str]) -> None:
    fake, url = vault
    b = backend(url, token="root-token")
    assert fake.write("secret/meterline", {"openai": "sk-vault-two"}) == 2
    assert fetch(b) == ("sk-vault-two", "2")
    assert fetch(b, f"{REFERENCE}?version=1") == ("sk-vault-one", "1")
    assert reads(fake)[-1].query == "version=1"


def test_approle_logs_in_once_and_uses_its_token(
    vault: tuple[FakeVault, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, url = vault
    fake.approles["role-1"] = "secret-id-1"
    monkeypatch.setenv("METERLINE_TEST_ROLE_ID", "role-1")
    (tmp_path / "secret-id").write_text("secret-id-1\n")
    b = backend(
        url, auth="approle", role_id="os.environ/METERLINE_TEST_ROLE_ID", secret_id=f"file://{tmp_path}/secret-id"
    )
    assert fetch(b) == ("sk-vault-one", "1")
    assert fetch(b, "vault://secret/meterline#dingtalk_url") == ("https://oapi.example/robot", "1")
    login, first, second = fake.requests
    assert (login.method, login.path, login.body) == (
        "POST",
        "/v1/auth/approle/login",
        {"role_id": "role-1", "secret_id": "secret-id-1"},
    )
    assert login.headers["x-vault-namespace"] == "team-a" and "x-vault-token" not in login.headers
    assert first.headers["x-vault-token"] == second.headers["x-vault-token"] == "hvs.token-1"
    assert b.logins == 1


def test_kubernetes_login_sends_role_and_service_account_jwt(vault: tuple[FakeVault, str], tmp_path: Path) -> None:
    fake, url = vault
    fake.kubernetes["meterline"] = "eyJhbGciOiJSUzI1NiJ9.sa.sig"
    (tmp_path / "token").write_text("eyJhbGciOiJSUzI1NiJ9.sa.sig")
    b = backend(url, auth="kubernetes", role="meterline", jwt_path=str(tmp_path / "token"))
    assert fetch(b) == ("sk-vault-one", "1")
    login = fake.requests[0]
    assert (login.path, login.body) == (
        "/v1/auth/kubernetes/login",
        {"role": "meterline", "jwt": "eyJhbGciOiJSUzI1NiJ9.sa.sig"},
    )
    assert fake.requests[1].headers["x-vault-token"] == "hvs.token-1"


def test_a_revoked_token_gets_403_and_the_backend_logs_in_again(vault: tuple[FakeVault, str]) -> None:
    fake, url = vault
    fake.approles["role-1"] = "secret-id-1"
    b = backend(url, auth="approle", role_id="role-1", secret_id="secret-id-1")
    assert fetch(b) == ("sk-vault-one", "1")
    fake.revoke_all()
    assert fetch(b) == ("sk-vault-one", "1")
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/v1/auth/approle/login"),
        ("GET", "/v1/secret/data/meterline"),
        ("GET", "/v1/secret/data/meterline"),  # 403 permission denied
        ("POST", "/v1/auth/approle/login"),
        ("GET", "/v1/secret/data/meterline"),
    ]
    assert [r.headers["x-vault-token"] for r in reads(fake)] == ["hvs.token-1", "hvs.token-1", "hvs.token-2"]
    assert b.logins == 2


def test_a_lease_running_out_is_renewed_and_an_expired_one_replaced(vault: tuple[FakeVault, str]) -> None:
    fake, url = vault
    fake.approles["role-1"] = "secret-id-1"
    clock = Clock()
    b = backend(url, clock, auth="approle", role_id="role-1", secret_id="secret-id-1")
    fetch(b)
    clock.now += 1200 * 0.9  # 10% of the lease left: renew
    fetch(b)
    clock.now += 1201  # past the renewed lease: log in again
    fetch(b)
    assert [(r.method, r.path) for r in fake.requests] == [
        ("POST", "/v1/auth/approle/login"),
        ("GET", "/v1/secret/data/meterline"),
        ("POST", "/v1/auth/token/renew-self"),
        ("GET", "/v1/secret/data/meterline"),
        ("POST", "/v1/auth/approle/login"),
        ("GET", "/v1/secret/data/meterline"),
    ]
    assert fake.requests[2].headers["x-vault-token"] == "hvs.token-1"
    assert b.logins == 2


@pytest.mark.parametrize(
    ("settings", "reference", "reason"),
    [
        ({"token": "root-token"}, "vault://secret/absent#k", "no secret or version at secret/data/absent (HTTP 404)"),
        (
            {"token": "root-token"},
            "vault://secret/meterline#nope",
            "no field 'nope' in the secret (fields: dingtalk_url, openai)",
        ),
        (
            {"token": "root-token"},
            "vault://secret/meterline",
            "name a field with #field (fields: dingtalk_url, openai)",
        ),
        ({"token": "wrong-token"}, REFERENCE, "Vault answered HTTP 403: permission denied"),
        (
            {"auth": "approle", "role_id": "role-1", "secret_id": "wrong"},
            REFERENCE,
            "approle login failed: Vault answered HTTP 400: invalid role or secret ID",
        ),
        (
            {"auth": "approle", "role_id": "os.environ/METERLINE_TEST_UNSET_ROLE"},
            REFERENCE,
            "secrets.vault.role_id (os.environ/METERLINE_TEST_UNSET_ROLE): environment variable "
            "METERLINE_TEST_UNSET_ROLE is not set or empty",
        ),
    ],
)
def test_errors_name_reference_backend_and_reason(
    vault: tuple[FakeVault, str], settings: dict[str, str], reference: str, reason: str
) -> None:
    fake, url = vault
    fake.approles["role-1"] = "secret-id-1"
    with pytest.raises(SecretResolutionError) as caught:
        backend(url, None, **settings).fetch(parse_reference(reference))
    assert str(caught.value) == f"cannot resolve secret reference {reference!r} (vault): {reason}"
    assert "sk-vault-one" not in str(caught.value) and "secret-id-1" not in str(caught.value)


def test_registry_uses_the_configured_vault(vault: tuple[FakeVault, str]) -> None:
    _fake, url = vault
    settings = SecretsConfig(vault=VaultConfig(address=url, token="root-token", namespace="team-a"))
    registry = SecretRegistry(settings)
    secret = registry.live(REFERENCE)
    registry.close()
    assert (secret.reveal(), secret.version, secret.refresh_seconds) == ("sk-vault-one", "1", 300.0)
