"""LiteLLM proxy configs, written as LiteLLM's documentation writes them, load unchanged; the
settings Meterline does not act on are listed by name, never by value."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.config_report import log_unused_settings, unused_settings
from meterline.config import EMBEDDED_SOURCE, MeterlineConfig, parse_config
from meterline.defaults import DEFAULT_CONFIG_YAML

FIXTURES = Path(__file__).parent / "litellm_configs"

EXPECTED_UNUSED: dict[str, list[str]] = {
    "configs_quick_start.yaml": [
        "model_list[3].litellm_params.aws_region_name",
        "litellm_settings.success_callback",
        "general_settings.alerting",
    ],
    "configs_model_params.yaml": [
        "model_list[0].litellm_params.azure_ad_token",
        "model_list[0].litellm_params.seed",
        "model_list[0].litellm_params.max_tokens",
        "model_list[1].litellm_params.temperature",
        "model_list[2].litellm_params.extra_headers",
        "model_list[2].litellm_params.temperature",
    ],
    "configs_load_balancing.yaml": [
        "router_settings.model_group_alias",
        "router_settings.redis_host",
        "router_settings.redis_password",
        "router_settings.redis_port",
        "litellm_settings.fallbacks",
        "litellm_settings.context_window_fallbacks",
        "litellm_settings.allowed_fails",
    ],
    "prod_best_practices.yaml": [
        "router_settings.redis_host",
        "router_settings.redis_port",
        "router_settings.redis_password",
        "litellm_settings.cache",
        "litellm_settings.cache_params",
        "general_settings.alerting",
        "general_settings.proxy_batch_write_at",
        "general_settings.database_connection_pool_limit",
        "general_settings.disable_spend_logs",
        "general_settings.disable_error_logs",
        "general_settings.allow_requests_on_db_unavailable",
    ],
    "timeouts_and_pricing.yaml": [
        "model_list[2].litellm_params.input_cost_per_second",
    ],
    "all_settings.yaml": [
        "router_settings.redis_host",
        "router_settings.redis_password",
        "router_settings.redis_port",
        "router_settings.enable_pre_call_checks",
        "router_settings.disable_cooldowns",
        "router_settings.retry_policy",
        "router_settings.allowed_fails_policy",
        "litellm_settings.success_callback",
        "litellm_settings.failure_callback",
        "litellm_settings.callbacks",
        "litellm_settings.turn_off_message_logging",
        "litellm_settings.force_ipv4",
        "litellm_settings.default_fallbacks",
        "litellm_settings.content_policy_fallbacks",
        "litellm_settings.context_window_fallbacks",
        "litellm_settings.cache",
        "litellm_settings.cache_params",
        "general_settings.completion_model",
        "general_settings.disable_spend_logs",
        "general_settings.allowed_routes",
        "general_settings.database_url",
        "general_settings.database_connection_pool_limit",
        "general_settings.database_connection_timeout",
        "general_settings.max_parallel_requests",
        "general_settings.background_health_checks",
        "general_settings.health_check_interval",
        "general_settings.alerting",
        "callback_settings.otel",
    ],
    "credentials_and_guardrails.yaml": [
        "model_list[0].litellm_params.litellm_credential_name",
        "environment_variables.REDIS_HOST",
        "environment_variables.REDIS_PORT",
        "credential_list[0]",
        "guardrails[0]",
    ],
}


def load_fixture(name: str) -> MeterlineConfig:
    path = FIXTURES / name
    return parse_config(path.read_text(encoding="utf-8"), str(path), environ={})


def test_every_fixture_has_expectations() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.yaml")) == sorted(EXPECTED_UNUSED)


@pytest.mark.parametrize("name", sorted(EXPECTED_UNUSED))
def test_litellm_doc_config_loads_and_reports_exactly_the_unused_keys(name: str) -> None:
    assert unused_settings(load_fixture(name)) == EXPECTED_UNUSED[name]


def test_litellm_shapes_meterline_reads_survive_loading() -> None:
    balanced = load_fixture("configs_load_balancing.yaml")
    assert balanced.model_groups() == ["zephyr-beta", "gpt-4o", "gpt-3.5-turbo-16k"]
    assert balanced.router_settings.fallbacks == [{"gpt-4o": ["gpt-3.5-turbo-16k"]}]
    assert (balanced.router_settings.num_retries, balanced.router_settings.timeout) == (2, 30.0)
    quick = load_fixture("configs_quick_start.yaml")
    assert quick.model_list[0].litellm_params.api_key == "os.environ/AZURE_API_KEY_WEST"
    assert quick.model_list[0].litellm_params.rpm == 6
    assert quick.general_settings.master_key == "sk-1234"


def test_the_warning_is_one_line_of_names_without_values(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.config_report")
    with caplog.at_level(logging.WARNING, logger="tests.config_report"):
        log_unused_settings(load_fixture("prod_best_practices.yaml"), logger)
    [entry] = caplog.records
    message = entry.getMessage()
    assert entry.levelno == logging.WARNING
    assert "\n" not in message
    assert "11 LiteLLM setting(s)" in message
    assert "general_settings.allow_requests_on_db_unavailable" in message
    for secret_or_value in ("sk-1234", "os.environ/REDIS_PASSWORD", "fake-key", "slack", "600"):
        assert secret_or_value not in message


def test_nothing_to_report_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    config = parse_config(DEFAULT_CONFIG_YAML, EMBEDDED_SOURCE, environ={})
    logger = logging.getLogger("tests.config_report")
    with caplog.at_level(logging.DEBUG, logger="tests.config_report"):
        log_unused_settings(config, logger)
    assert unused_settings(config) == []
    assert caplog.records == []
