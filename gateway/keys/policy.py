"""What a key given in the config must be, checked where the resolved values are known.

An agent key from `agents[].key` and the master key are each at least `key_store.min_key_length`
characters; no two agents share a key (the second agent's spend would be billed to the first);
no agent's key is the master key (the agent would hold the admin API). `create_app` checks after
the secrets are preloaded, `meterline keys apply` before it plans. Errors name the fields and the
agents, never a key or its length.
"""

from __future__ import annotations

from collections.abc import Callable

from meterline.config import MeterlineConfig

MIN_LENGTH_SETTING = "key_store.min_key_length"


class KeyPolicyError(Exception):
    """Keys in the config that the gateway refuses to start with; the message names every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("refused keys in the config: " + "; ".join(problems))
        self.problems = problems


def check_config_keys(config: MeterlineConfig, resolve: Callable[[str], str]) -> None:
    """Raise KeyPolicyError naming every key in `config` that breaks the policy; `resolve`
    turns a setting into its current value (a reference into its secret)."""
    minimum = config.key_store.min_key_length
    too_short = f"shorter than {MIN_LENGTH_SETTING} ({minimum} characters)"
    problems: list[str] = []
    master_setting = config.general_settings.master_key
    master = resolve(master_setting) if master_setting else None
    if master is not None and len(master) < minimum:
        problems.append(f"general_settings.master_key is {too_short}")
    first_with: dict[str, str] = {}
    for index, agent in enumerate(config.agents):
        if agent.key is None:
            continue
        key = resolve(agent.key)
        where = f"agents[{index}].key (agent {agent.id})"
        if len(key) < minimum:
            problems.append(f"{where} is {too_short}")
        if master is not None and key == master:
            problems.append(f"{where} is the master key; an agent's key must not open the admin API")
        if key in first_with:
            problems.append(
                f"{where} is the same key as {first_with[key]}; each agent needs its own key "
                "(or one agent's spend is billed to the other)"
            )
        else:
            first_with[key] = where
    if problems:
        raise KeyPolicyError(problems)
