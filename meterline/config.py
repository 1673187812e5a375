"""The one config file, meterline.yaml: validated once at startup, errors name the file and field.

LiteLLM's own sections (`model_list`, `router_settings`, `litellm_settings`,
`general_settings`) keep LiteLLM's shape and accept keys Meterline does not use; Meterline's
sections forbid unknown keys so a typo is an error, not a silently ignored setting.
Environment variables `METERLINE_<SECTION>__<FIELD>` override single values
(for example `METERLINE_TELEMETRY__COLLECTOR=http://collector:4318`).
"""

from __future__ import annotations

import difflib
import os
import re
import zoneinfo
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from meterline.defaults import DEFAULT_CONFIG_YAML
from meterline.litellm_providers import known_providers, provider_of
from meterline.record_limits import ID_PATTERN, RecordLimits
from meterline.secret_syntax import refused_form

DEFAULT_CONFIG_PATH = Path("meterline.yaml")
EMBEDDED_SOURCE = "<embedded defaults>"
ENV_OVERRIDE_PREFIX = "METERLINE_"
CUSTOM_PROVIDERS = "custom_providers"
"""Validation context key: provider names the file registers itself (not LiteLLM's own)."""


class ConfigError(Exception):
    """A config file that cannot be used; the message names the file and the field.

    `more` holds the file's further problems (field, message), so one run reports all of them,
    one line each; `field` is the first one's."""

    def __init__(self, source: str, field: str | None, message: str, more: list[Problem] | None = None) -> None:
        self.problems: list[Problem] = [(field, message), *(more or [])]
        super().__init__("\n".join(f"{source}: {f}: {m}" if f else f"{source}: {m}" for f, m in self.problems))
        self.source = source
        self.field = field


Problem = tuple[str | None, str]
"""(field path or None, what is wrong with it)."""


def _not_a_mistyped_reference(value: str) -> str:
    if (refused := refused_form(value)) is not None:
        raise PydanticCustomError("secret_reference", "{reason}", {"reason": refused.reason})
    return value


SecretRef = Annotated[str, AfterValidator(_not_a_mistyped_reference)]
"""A field that may hold a secret reference (`os.environ/NAME`, `file://`, `aws-secretsmanager://`,
`vault://`) or a literal. A value that looks like a mistyped reference (`${NAME}`, `$NAME`,
`vault:/x`, `gcp-sm://x`: meterline/secret_syntax.py) is refused at load, naming file and field,
so it never becomes a literal master key. Every secret field is typed with it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _LiteLLMSection(BaseModel):
    model_config = ConfigDict(extra="allow")


class LiteLLMParams(_LiteLLMSection):
    model: str
    """`provider/model` (a provider LiteLLM knows, else refused at load), or a bare model name."""
    api_key: SecretRef | None = None
    api_base: SecretRef | None = None
    mock_response: str | None = None
    rpm: int | None = None
    tpm: int | None = None

    @model_validator(mode="after")
    def _known_provider(self, info: ValidationInfo) -> LiteLLMParams:
        explicit = (self.model_extra or {}).get("custom_llm_provider")
        provider = provider_of(self.model, explicit if isinstance(explicit, str) else None)
        known = known_providers()
        custom = (info.context or {}).get(CUSTOM_PROVIDERS, ())
        if provider is not None and known is not None and provider not in known and provider not in custom:
            field = "custom_llm_provider" if explicit else "model"
            close = difflib.get_close_matches(provider, sorted(known), n=1, cutoff=0.75)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(
                f"{field}: unknown provider {provider!r}: LiteLLM knows no such provider, so every request to"
                f" this model would fail; {hint}(the providers: https://docs.litellm.ai/docs/providers)"
            )
        return self


class ModelDeployment(_LiteLLMSection):
    model_name: str
    litellm_params: LiteLLMParams
    model_info: dict[str, Any] = Field(default_factory=dict)


class RouterSettings(_LiteLLMSection):
    routing_strategy: str = "simple-shuffle"
    num_retries: int = 0
    timeout: float | None = None
    fallbacks: list[dict[str, list[str]]] = Field(default_factory=list)


class GeneralSettings(_LiteLLMSection):
    master_key: SecretRef | None = None


class Limits(_Strict):
    rpm: int | None = Field(default=None, ge=0)
    tpm: int | None = Field(default=None, ge=0)
    tokens_per_day: int | None = Field(default=None, ge=0)
    usd_per_day: float | None = Field(default=None, ge=0)
    usd_per_month: float | None = Field(default=None, ge=0)
    max_parallel: int | None = Field(default=None, ge=1)


class AgentConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    team: str = Field(pattern=ID_PATTERN)
    project: str | None = Field(default=None, pattern=ID_PATTERN)
    tags: dict[str, str] = Field(default_factory=dict)
    key: SecretRef | None = None
    """A pre-issued key: a secret reference or a literal. Only its hash is kept in memory. At
    least `key_store.min_key_length` characters once resolved, never another agent's key or the
    master key (refused at startup and by `meterline keys apply`)."""
    models: list[str] | None = None
    limits: Limits = Field(default_factory=Limits)


class TeamConfig(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    limits: Limits = Field(default_factory=Limits)


class BudgetConfig(_Strict):
    name: str
    scope: dict[Literal["team", "project", "agent", "model"], str] = Field(default_factory=dict)
    period: Literal["day", "month"]
    amount_usd: float = Field(gt=0)
    thresholds: list[float] = Field(default_factory=lambda: [50.0, 80.0, 100.0])
    channels: list[str] = Field(default_factory=list)


class AlertChannel(_Strict):
    type: Literal["dingtalk", "slack", "webhook", "console"]
    """`console` needs no network: one log line per alarm on the stderr of the process that
    evaluates the budgets (`meterline analytics serve`/`run`, so `meterline up`'s terminal)."""
    webhook: SecretRef | None = None
    """The chat's or receiver's URL (a secret reference); every type but `console` needs it."""
    secret: SecretRef | None = None

    @model_validator(mode="after")
    def _webhook_unless_console(self) -> AlertChannel:
        if self.type != "console" and self.webhook is None:
            raise ValueError(f"webhook: a {self.type} channel needs its webhook URL")
        return self


class AlertsConfig(_Strict):
    dashboard_url: str | None = None
    channels: dict[str, AlertChannel] = Field(default_factory=dict)
    anomaly_sigmas: float = Field(default=3.0, gt=0)
    """An agent's spend today is an anomaly above mean + this many standard deviations of its
    own trailing `anomaly_window_days` (days without spend count as 0)."""
    anomaly_window_days: int = Field(default=14, ge=2)
    anomaly_min_usd: float = Field(default=5.0, ge=0)
    """Spend today below this never pages anyone, whatever the baseline."""
    delivery_attempts: int = Field(default=3, ge=1)
    """Tries per message and channel within one run (backoff 1 s, 2 s, ...); failures are retried next run."""
    oncall_channels: list[str] = Field(default_factory=list)
    """Channels (names from `channels`) that get system alarms, which no budget owns: today a
    quota store reset (Redis lost the counters; gateway/quotas/reset.py). Empty: logged and
    counted in `/metrics` only."""

    @model_validator(mode="after")
    def _known_oncall_channels(self) -> AlertsConfig:
        for index, name in enumerate(self.oncall_channels):
            if name not in self.channels:
                raise ValueError(f"oncall_channels[{index}]: no channel named {name!r} in alerts.channels")
        return self


class TelemetryConfig(_Strict):
    collector: str = "http://127.0.0.1:4318"
    """OTLP/HTTP endpoint of the collector (without /v1/...)."""
    span_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    capture_content: bool = False
    export_interval_ms: int = Field(default=500, ge=10)
    """How long the gateway batches spans and usage records before one export."""
    export_batch_size: int = Field(default=512, ge=1)
    spool_flush_ms: int = Field(default=50, ge=0)
    """fsync window of the gateway's on-disk usage spool. A usage record is written to the spool
    file before its response completes (a killed process loses nothing); the fsyncs are grouped
    every this many ms, so a machine crash can lose the last window. 0: each response also waits
    for its record's fsync."""
    spool_max_bytes: int = Field(default=1024**3, gt=0)
    """Cap of the usage spool (warnings at 50 % and 80 %); beyond it usage records wait in memory
    (`max_backlog`)."""
    max_backlog: int = Field(default=100_000, ge=1)
    """Most usage records (those the spool cannot take: full or failing disk) and, separately, most
    spans the gateway holds in memory. While the usage backlog is full, model calls get 503;
    beyond it a record is dropped, counted and logged."""
    collector_token: SecretRef | None = None
    """Bearer token the exporter sends to the collector (a secret reference, like every secret
    here): the token of a `collector.ingest_tokens` principal with scopes `usage` and `spans`.
    Absent: no Authorization header (a collector without tokens, on loopback)."""
    collector_ca_file: str | None = None
    """PEM file of the CA that signed an `https://` collector's certificate; absent: the system's CAs."""


class StorageConfig(_Strict):
    data_dir: str = "./data"
    """Where the ledger lands: a local directory, or `s3://bucket/prefix` (the collector's Parquet)."""
    retention_days: int = Field(default=400, ge=1)
    """The collector removes date partitions older than this many days."""
    local_dir: str = "./data"
    """With an S3 `data_dir`: the local directory for everything that is not the ledger: the
    collector's write-ahead log, the gateway's key store and usage spool, the marts and the
    alarm state (keep it on a persistent volume: losing the alarm state re-sends alarms)."""
    s3_endpoint_url: str | None = None
    """S3 endpoint override (MinIO, moto, a VPC endpoint); absent: AWS_ENDPOINT_URL_S3, then AWS."""
    s3_region: str | None = None
    """Absent: AWS_REGION / AWS_DEFAULT_REGION."""
    compact_interval_seconds: float = Field(default=300.0, gt=0)
    """How often the collector merges small Parquet files and applies retention."""
    compact_min_files: int = Field(default=10, ge=2)
    """A date partition is compacted once it holds this many small files."""
    compact_small_file_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    """Parquet files smaller than this are merged; bigger ones stay as they are."""


class QuotaStoreConfig(_Strict):
    """Where quota counters live (gateway/quotas). Absent `redis_url`: in-process counters,
    right for one gateway process; with several replicas, Redis makes the limits shared."""

    redis_url: SecretRef | None = None
    """Redis holding the counters shared by replicas; may be a secret reference (`os.environ/NAME`, ...)."""
    fail_mode: Literal["open", "closed"] = "open"
    """With Redis unreachable: `open` admits against in-process counters (a warning, a metric),
    `closed` refuses with 503."""
    key_prefix: str = Field(default="meterline:quota:", min_length=1)
    """Prefix of every quota key in Redis; for Redis Cluster use a hash tag (`{meterline}:quota:`)."""
    timeout_seconds: float = Field(default=0.25, gt=0)
    """Connect and reply timeout of one Redis call; past it the fail mode applies."""
    recheck_seconds: float = Field(default=1.0, ge=0)
    """With `fail_mode: open`, after a Redis failure, how long requests skip Redis before it is
    tried again. `closed` tries Redis on every request (the alternative is a 503)."""
    parallel_lease_seconds: float = Field(default=900.0, gt=0)
    """How long a concurrency slot in Redis outlives a replica that died holding it."""


class KeyStoreConfig(_Strict):
    """Where agents and their key hashes live (gateway/keys/)."""

    database_url: SecretRef | None = None
    """PostgreSQL URL (may be a secret reference) when several replicas share the store;
    absent: SQLite at `<data_dir>/keys.sqlite`."""
    hash_secret: SecretRef | None = None
    """The HMAC-SHA256 secret keys are hashed with (a secret reference); absent: generated once
    and kept at `<data_dir>/secrets/key-hash.secret`. Replicas sharing a store must share it."""
    jwt_signing_key: SecretRef | None = None
    """HS256 key for POST /v1/auth/token (a secret reference); absent: generated once and kept at
    `<data_dir>/secrets/jwt-signing.secret`."""
    refresh_seconds: float = Field(default=2.0, gt=0)
    """How often each gateway reloads the store, so a revoke on one replica reaches the others."""
    rotation_grace_seconds: float = Field(default=3600.0, ge=0)
    """How long a rotated key keeps working beside its replacement."""
    min_key_length: int = Field(default=20, ge=1)
    """The fewest characters an agent key given in the config (`agents[].key`) and the master
    key may have once resolved; a shorter one stops startup and `meterline keys apply` (exit 2).
    Minted keys are 46 characters."""


IngestScope = Literal["usage", "spans"]


class IngestTokenConfig(_Strict):
    """One principal that may write to the collector, known by its bearer token."""

    name: str = Field(min_length=1)
    """Shown in the collector's logs and refusals (never the token)."""
    token: SecretRef = Field(min_length=1)
    """The bearer token: a secret reference (`os.environ/NAME`, `aws-secretsmanager://...`,
    `vault://...`, `file://...`) or a literal; at least 20 characters once resolved."""
    scopes: list[IngestScope] = Field(min_length=1)
    """`usage`: may write usage records (the gateways); `spans`: may write spans and logs that
    are not usage records (agents, any OpenTelemetry SDK). A gateway needs both."""


class CollectorTlsConfig(_Strict):
    cert_file: str = Field(min_length=1)
    """PEM certificate (chain) both OTLP listeners (HTTP and gRPC) present."""
    key_file: str = Field(min_length=1)
    """PEM private key of `cert_file`."""


class CollectorConfig(_Strict):
    """Who may write to the collector, and over what (collector/auth.py)."""

    ingest_tokens: list[IngestTokenConfig] = Field(default_factory=list)
    """The principals. Empty: no authentication, so the collector serves loopback only."""
    tls: CollectorTlsConfig | None = None
    """TLS on both OTLP listeners; absent: plain HTTP and gRPC."""
    validation: RecordLimits = Field(default_factory=RecordLimits)
    """What a usage record may hold (meterline/record_limits.py); others go to the quarantine."""
    allow_unauthenticated: bool = False
    """Without `ingest_tokens`, bind a non-loopback address anyway (anyone who reaches it may
    write the ledger; a warning at every start). Without it such a start is refused (exit 2)."""

    @model_validator(mode="after")
    def _unique_names(self) -> CollectorConfig:
        seen: set[str] = set()
        for index, principal in enumerate(self.ingest_tokens):
            if principal.name in seen:
                raise ValueError(f"ingest_tokens[{index}].name: duplicate principal name {principal.name!r}")
            seen.add(principal.name)
        return self


class DashboardConfig(_Strict):
    password: SecretRef | None = None
    """A login for the dashboard: a secret reference (`aws-secretsmanager://...`, `vault://...`,
    `os.environ/NAME`, `file://PATH`) to the password every viewer types. Re-read every 300 s,
    compared in constant time, never logged. With it (or `oidc`) the dashboard may bind any address."""
    oidc: bool = False
    """Log in with Streamlit's OIDC support (`st.login`) instead: the identity provider's
    settings go in Streamlit's `[auth]` secrets (`.streamlit/secrets.toml`), as Streamlit documents."""
    allow_unauthenticated: bool = False
    """Without `password` or `oidc` the dashboard has no login: bind a non-loopback address
    (`meterline dashboard --host 0.0.0.0`) only with this on (a warning at every start);
    otherwise refused (exit 2)."""


class AnalyticsConfig(_Strict):
    interval_seconds: float = Field(default=300.0, gt=0)
    """How often `meterline analytics serve` rebuilds the marts (`meterline up` uses 5 s)."""


class ResponseCacheConfig(_Strict):
    """Exact-match response cache, opt-in per model group (empty `model_groups` = off)."""

    backend: Literal["memory", "redis"] = "memory"
    redis_url: SecretRef | None = None
    """Needed for `backend: redis`; may be a secret reference (`os.environ/NAME`, ...)."""
    ttl_seconds: float = Field(default=3600, gt=0)
    max_entries: int = Field(default=10000, ge=1)
    """Entries the in-memory backend keeps (least recently used go first)."""
    model_groups: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _redis_needs_url(self) -> ResponseCacheConfig:
        if self.backend == "redis" and not self.redis_url:
            raise ValueError("backend redis needs redis_url")
        return self


class VaultConfig(_Strict):
    """Vault for `vault://MOUNT/PATH#field` references (KV version 2). Each value may itself be a
    literal, `os.environ/NAME` or `file://PATH`; unset ones fall back to Vault's own environment
    variables (`VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_NAMESPACE`)."""

    address: SecretRef | None = None
    """Vault's URL, e.g. `https://vault.internal:8200`."""
    auth: Literal["token", "approle", "kubernetes"] = "token"
    token: SecretRef | None = None
    """For `auth: token`."""
    role_id: SecretRef | None = None
    """For `auth: approle`."""
    secret_id: SecretRef | None = None
    """For `auth: approle`."""
    role: str | None = None
    """For `auth: kubernetes`: the Vault role bound to the service account."""
    jwt_path: str = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    """For `auth: kubernetes`: the service-account token file."""
    auth_mount: str | None = None
    """Where the auth method is mounted (default: `approle` or `kubernetes`)."""
    namespace: str | None = None
    """Vault Enterprise namespace, sent as `X-Vault-Namespace`."""
    timeout_seconds: float = Field(default=5.0, gt=0)


class SecretsConfig(_Strict):
    """How secret references (`os.environ/`, `file://`, `aws-secretsmanager://`, `vault://`) are read."""

    refresh_seconds: float = Field(default=300.0, gt=0)
    """How often each provider key is re-read in the background; `?refresh=SECONDS` on a
    reference overrides it."""
    vault: VaultConfig = Field(default_factory=VaultConfig)


class MeterlineConfig(_Strict):
    model_list: list[ModelDeployment] = Field(default_factory=list)
    router_settings: RouterSettings = Field(default_factory=RouterSettings)
    litellm_settings: dict[str, Any] = Field(default_factory=dict)
    general_settings: GeneralSettings = Field(default_factory=GeneralSettings)
    # Further LiteLLM proxy sections: accepted so a LiteLLM config.yaml loads unchanged, not acted
    # on (gateway.config_report lists them at startup).
    environment_variables: dict[str, Any] = Field(default_factory=dict)
    credential_list: list[Any] = Field(default_factory=list)
    callback_settings: dict[str, Any] = Field(default_factory=dict)
    guardrails: list[Any] = Field(default_factory=list)
    timezone: str = "UTC"
    env: str = "dev"
    tenant: str = "default"
    agents: list[AgentConfig] = Field(default_factory=list)
    teams: list[TeamConfig] = Field(default_factory=list)
    budgets: list[BudgetConfig] = Field(default_factory=list)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    telemetry: TelemetryConfig = Field(default_factory=TelemetryConfig)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    analytics: AnalyticsConfig = Field(default_factory=AnalyticsConfig)
    quota_store: QuotaStoreConfig = Field(default_factory=QuotaStoreConfig)
    key_store: KeyStoreConfig = Field(default_factory=KeyStoreConfig)
    response_cache: ResponseCacheConfig = Field(default_factory=ResponseCacheConfig)
    secrets: SecretsConfig = Field(default_factory=SecretsConfig)
    collector: CollectorConfig = Field(default_factory=CollectorConfig)
    dashboard: DashboardConfig = Field(default_factory=DashboardConfig)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _unique_agents(self) -> MeterlineConfig:
        seen: set[str] = set()
        for index, agent in enumerate(self.agents):
            if agent.id in seen:
                raise ValueError(f"agents[{index}].id: duplicate agent id {agent.id!r}")
            seen.add(agent.id)
        return self

    def model_groups(self) -> list[str]:
        return list(dict.fromkeys(d.model_name for d in self.model_list))


_RELATIVE_PATH = re.compile(r"^([A-Za-z_]\w*(?:\[\d+\])*(?:\.[A-Za-z_]\w*(?:\[\d+\])*)*): (.+)$", re.DOTALL)


def _problems(exc: ValidationError, raw: dict[str, Any]) -> list[Problem]:
    """Every error of the file, in pydantic's order, then the checks across entries that
    pydantic runs only once every field is valid (so they would hide behind a field error)."""
    found: list[Problem] = []
    for error in exc.errors():
        field, message = _field_path(error["loc"]), error["msg"]
        if error["type"] == "value_error":
            # A model validator names the entry inside its model: `agents[1].id: duplicate ...`.
            message = message.removeprefix("Value error, ")
            if (inner := _RELATIVE_PATH.match(message)) is not None:
                field = f"{field}.{inner[1]}" if field else inner[1]
                message = inner[2]
        elif error["type"] == "extra_forbidden" and (hint := _did_you_mean(error["loc"])):
            message = f"{message} (unknown field); did you mean {hint!r}?"
        problem = (field or None, message)
        if problem not in found:
            found.append(problem)
    found += [problem for problem in _duplicate_agent_ids(raw) if problem not in found]
    return found


def _custom_providers(raw: dict[str, Any]) -> frozenset[str]:
    """Providers `litellm_settings.custom_provider_map` registers (LiteLLM's custom handlers)."""
    settings = raw.get("litellm_settings")
    entries = settings.get("custom_provider_map") if isinstance(settings, dict) else None
    names = [entry.get("provider") for entry in entries or [] if isinstance(entry, dict)]
    return frozenset(name for name in names if isinstance(name, str))


def _duplicate_agent_ids(raw: dict[str, Any]) -> list[Problem]:
    """`MeterlineConfig._unique_agents` over the raw file, whatever else in it is wrong."""
    agents = raw.get("agents")
    seen: set[object] = set()
    found: list[Problem] = []
    for index, agent in enumerate(agents if isinstance(agents, list) else []):
        agent_id = agent.get("id") if isinstance(agent, dict) else None
        if not isinstance(agent_id, str):
            continue
        if agent_id in seen:
            found.append((f"agents[{index}].id", f"duplicate agent id {agent_id!r}"))
        seen.add(agent_id)
    return found


def _did_you_mean(loc: tuple[int | str, ...]) -> str | None:
    """The closest field name of the model an unknown key sits in (`tem` -> `team`)."""
    model: Any = MeterlineConfig
    keyed = False
    for part in loc[:-1]:
        if isinstance(part, int) or keyed:
            keyed = False
            continue  # a list index or a dict key (`alerts.channels.<name>`): the item type follows
        if not (isinstance(model, type) and issubclass(model, BaseModel)) or part not in model.model_fields:
            return None
        annotation = model.model_fields[part].annotation
        keyed = "dict[" in str(annotation)
        model = _item_model(annotation)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    return close[0] if close else None


def _item_model(annotation: Any) -> Any:
    """The model a field holds, through `X | None`, `list[X]` and `dict[str, X]`."""
    for arg in reversed(get_args(annotation)):
        if arg is not type(None):
            return _item_model(arg) if get_args(arg) else arg
    return annotation


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path


def _apply_env_overrides(raw: dict[str, Any], environ: dict[str, str]) -> None:
    for name, value in environ.items():
        if not name.startswith(ENV_OVERRIDE_PREFIX) or "__" not in name:
            continue
        path = name[len(ENV_OVERRIDE_PREFIX) :].lower().split("__")
        node = raw
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value


def parse_config(text: str, source: str, environ: dict[str, str] | None = None) -> MeterlineConfig:
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else None
        raise ConfigError(source, where, f"not valid YAML ({getattr(exc, 'problem', exc)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(source, None, "the top level must be a mapping of sections")
    _apply_env_overrides(raw, dict(os.environ) if environ is None else environ)
    try:
        return MeterlineConfig.model_validate(raw, context={CUSTOM_PROVIDERS: _custom_providers(raw)})
    except ValidationError as exc:
        problems = _problems(exc, raw)
        raise ConfigError(source, *problems[0], more=problems[1:]) from None


def load_config(path: Path | None, environ: dict[str, str] | None = None) -> tuple[MeterlineConfig, str]:
    """The config and where it came from. `path=None` means ./meterline.yaml if present, else
    the embedded defaults; an explicit path that does not exist is an error."""
    if path is None:
        if not DEFAULT_CONFIG_PATH.exists():
            return parse_config(DEFAULT_CONFIG_YAML, EMBEDDED_SOURCE, environ), EMBEDDED_SOURCE
        path = DEFAULT_CONFIG_PATH
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(path), None, f"cannot read ({exc.strerror})") from None
    return parse_config(text, str(path), environ), str(path)
