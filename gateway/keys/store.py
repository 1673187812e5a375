"""The key store: agents and their key hashes, shared by every gateway replica and the CLI.

Backends (sqlite_store, postgres_store) keep the same schema (sql_store) and are chosen by
`key_store.database_url`. Times are UNIX seconds (float). A key is valid at time t when it is
not revoked, `t < expires` (if set) and `t < grace_until` (if set; set when it was rotated).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

Source = Literal["config", "api"]


class KeyStoreError(Exception):
    """The store could not be read or written (connection, disk); callers retry or report."""


class AgentExists(KeyStoreError):
    pass


class UnknownAgent(KeyStoreError):
    pass


@dataclass(frozen=True)
class AgentRecord:
    agent_id: str
    team: str
    project: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    models: list[str] | None = None
    """Model groups this agent may call; None means every group."""
    limits: dict[str, Any] = field(default_factory=dict)
    """meterline.config.Limits as JSON (unset limits left out)."""
    source: Source = "api"
    created: float = 0.0

    def same_settings(self, other: AgentRecord) -> bool:
        """Equal in everything `keys apply` manages (not the creation time)."""
        mine = (self.team, self.project, self.tags, self.models, self.limits, self.source)
        return mine == (other.team, other.project, other.tags, other.models, other.limits, other.source)


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    key_hash: str
    agent_id: str
    alias: str | None = None
    source: Source = "api"
    created: float = 0.0
    expires: float | None = None
    last_used: float | None = None
    revoked: float | None = None
    """When it was revoked; None while it is not."""
    grace_until: float | None = None
    """Set by a rotation: the old key works until then."""

    def valid_at(self, now: float) -> bool:
        return (
            self.revoked is None
            and (self.expires is None or now < self.expires)
            and (self.grace_until is None or now < self.grace_until)
        )

    @property
    def valid_until(self) -> float | None:
        ends = [t for t in (self.expires, self.grace_until) if t is not None]
        return min(ends) if ends else None


@dataclass(frozen=True)
class Snapshot:
    """Everything authentication needs, read in one go: every agent and every unrevoked key."""

    agents: dict[str, AgentRecord]
    keys: list[KeyRecord]
    version: int = 0
    """The store's change counter when this was read (see `KeyStore.version`)."""
    extra_hashes: dict[str, str] = field(default_factory=dict)
    """hash -> key id: a key's hash under a newer key-hashing secret (see `add_key_hashes`)."""


class KeyStore(Protocol):
    async def open(self) -> None:
        """Connect and create the schema if absent (safe when several replicas start at once)."""

    async def close(self) -> None: ...

    async def snapshot(self) -> Snapshot: ...

    async def version(self) -> int:
        """A counter every change to agents or keys increases (last-used times do not), so a
        reader can skip a snapshot that would be the same as its last one."""

    async def list_agents(self) -> list[AgentRecord]: ...

    async def get_agent(self, agent_id: str) -> AgentRecord | None: ...

    async def create_agent(self, agent: AgentRecord) -> None:
        """Insert a new agent; AgentExists if the id is taken."""

    async def upsert_agent(self, agent: AgentRecord) -> None:
        """Insert or update (keeping the original creation time)."""

    async def delete_agent(self, agent_id: str, now: float) -> bool:
        """Remove the agent and revoke its keys; False if there was no such agent."""

    async def add_key(self, key: KeyRecord) -> bool:
        """Insert a key; False (and no change) if the same hash is already stored.
        UnknownAgent if its agent does not exist."""

    async def get_key(self, key_id: str) -> KeyRecord | None: ...

    async def list_keys(self, agent_id: str | None = None) -> list[KeyRecord]: ...

    async def revoke_key(self, key_id: str, now: float) -> bool:
        """False if there is no such unrevoked key."""

    async def rotate_key(self, old_key_id: str, new_key: KeyRecord, grace_until: float) -> bool:
        """Atomically: the old key ends at `grace_until` (or earlier if already ending) and the
        new key is added (unless its hash is already stored). Whether both happened: False and
        no change if the old key is unknown or revoked."""

    async def reinstate_key(self, key_id: str) -> bool:
        """Clear an unrevoked key's expiry and grace end (a pre-issued key declared again)."""

    async def add_key_hashes(self, hashes: dict[str, str], now: float) -> None:
        """Store {key id: hash of the key under the current hashing secret} besides the key's
        own hash, so keys seen during a hash-secret rotation keep working on every replica."""

    async def touch_last_used(self, used: dict[str, float]) -> None:
        """Record last use per key id, in one batch (never moves a time backwards)."""
