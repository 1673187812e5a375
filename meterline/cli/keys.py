"""`meterline keys create|list|revoke|rotate|apply`: the key store, directly (same config and
`--data-dir` as the gateway, so the same store and hash secret).

A new key is printed exactly once (create, rotate, apply without `--write-keys-to`); with
`--write-keys-to aws-secretsmanager://PREFIX` each minted key goes to PREFIX/<agent_id> in AWS
Secrets Manager instead (region and endpoint from the usual AWS environment) and is not printed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from gateway.errors import GatewayError
from gateway.keys.admin import KeyAdmin, NewKey, key_status
from gateway.keys.declared import Change, apply, plan
from gateway.keys.policy import check_config_keys
from gateway.keys.service import KeyServices, open_keys
from gateway.keys.store import KeyRecord, KeyStoreError
from meterline.cli.commands import UsageError, load
from meterline.config import MeterlineConfig
from meterline.secrets import resolve

SM_SCHEME = "aws-secretsmanager://"
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd]?)$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """`90`, `45s`, `15m`, `1h`, `30d` -> seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise UsageError(f"{text!r} is not a duration (examples: 45s, 15m, 1h, 30d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def _config(args: argparse.Namespace) -> MeterlineConfig:
    config, layout = load(args)
    return config.model_copy(update={"storage": config.storage.model_copy(update={"data_dir": str(layout.root)})})


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if ts is not None else "-"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[str(c) for c in headers], *[["-" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _run(args: argparse.Namespace, work: Callable[[KeyServices], Awaitable[int]]) -> int:
    async def main() -> int:
        services = await open_keys(_config(args))
        try:
            return await work(services)
        finally:
            await services.close()

    try:
        return asyncio.run(main())
    except (GatewayError, KeyStoreError) as exc:
        print(f"meterline: error: {getattr(exc, 'message', exc)}", file=sys.stderr)
        return 1


def _print_new_key(verb: str, record: KeyRecord, key: str) -> None:
    expires = _when(record.expires)
    print(f"{verb} key {record.key_id} for agent {record.agent_id} (alias {record.alias}, expires {expires})")
    print("The key is shown once; store it now:")
    print(key)


def create(args: argparse.Namespace) -> int:
    expires_in = parse_duration(args.expires_in) if args.expires_in else None

    async def work(services: KeyServices) -> int:
        new = await services.admin.create_key(args.agent, args.alias, expires_in)
        _print_new_key("Created", new.record, new.key)
        return 0

    return _run(args, work)


def list_keys(args: argparse.Namespace) -> int:
    async def work(services: KeyServices) -> int:
        now = services.admin.clock()
        keys = await services.store.list_keys(args.agent)
        rows = [
            (k.key_id, k.agent_id, k.alias, k.source, key_status(k, now), _when(k.created), _when(k.valid_until),
             _when(k.last_used))
            for k in keys
        ]  # fmt: skip
        headers = ("KEY_ID", "AGENT", "ALIAS", "SOURCE", "STATUS", "CREATED", "VALID_UNTIL", "LAST_USED")
        print(table(headers, rows) if rows else "no keys")
        return 0

    return _run(args, work)


def revoke(args: argparse.Namespace) -> int:
    async def work(services: KeyServices) -> int:
        record = await services.admin.revoke_key(args.key_id)
        print(f"Revoked key {record.key_id} of agent {record.agent_id}; gateways refuse it within "
              f"key_store.refresh_seconds.")  # fmt: skip
        return 0

    return _run(args, work)


def rotate(args: argparse.Namespace) -> int:
    grace = parse_duration(args.grace) if args.grace else None

    async def work(services: KeyServices) -> int:
        new = await services.admin.rotate_key(args.key_id, grace)
        old = await services.admin.key(args.key_id)
        print(f"Rotated key {args.key_id}: it keeps working until {_when(old.valid_until)} UTC.")
        _print_new_key("New", new.record, new.key)
        return 0

    return _run(args, work)


def _secret_name(target: str, agent_id: str) -> str:
    return f"{target[len(SM_SCHEME) :].strip('/')}/{agent_id}"


def write_to_secrets_manager(target: str, keys: dict[str, str]) -> list[str]:
    """Store each key at PREFIX/<agent_id>; the names written, in order."""
    import boto3

    client = boto3.client("secretsmanager")
    written = []
    for agent_id, key in keys.items():
        name = _secret_name(target, agent_id)
        try:
            client.create_secret(Name=name, SecretString=key)
        except client.exceptions.ResourceExistsException:
            client.put_secret_value(SecretId=name, SecretString=key)
        written.append(name)
    return written


def _print_plan(changes: list[Change]) -> None:
    print(table(("ACTION", "AGENT", "DETAIL"), [(c.action, c.agent_id, c.detail) for c in changes]))


def apply_config(args: argparse.Namespace) -> int:
    target: str | None = args.write_keys_to
    if target is not None and (not target.startswith(SM_SCHEME) or not target[len(SM_SCHEME) :].strip("/")):
        raise UsageError(f"--write-keys-to must look like {SM_SCHEME}PREFIX, not {target!r}")
    config = _config(args)
    check_config_keys(config, resolve)  # the gateway would refuse to start with these keys

    async def work(services: KeyServices) -> int:
        admin = services.admin
        store = services.store
        changes = plan(
            config.agents, await store.list_agents(), await store.list_keys(), services.hasher, admin.clock()
        )
        if not changes:
            print("no changes: the key store matches the config")
            return 0
        print(f"Plan: {len(changes)} change(s)")
        _print_plan(changes)
        if args.dry_run:
            print("dry run: nothing applied")
            return 0
        minted = await apply(admin, changes)
        print(f"Applied {len(changes)} change(s).")
        if minted:
            await _hand_out(admin, target, minted)
        return 0

    return _run(args, work)


async def _hand_out(admin: KeyAdmin, target: str | None, minted: dict[str, NewKey]) -> None:
    if target is None:
        print("New keys (shown once; store them now):")
        print(table(("AGENT", "KEY_ID", "KEY"), [(a, n.record.key_id, n.key) for a, n in sorted(minted.items())]))
        return
    try:
        names = await asyncio.to_thread(write_to_secrets_manager, target, {a: n.key for a, n in minted.items()})
    except Exception as exc:  # noqa: BLE001 - any failure: the unsaved keys must not stay usable
        for new in minted.values():
            await admin.store.revoke_key(new.record.key_id, admin.clock())
        raise KeyStoreError(
            f"could not write the new keys to {target} ({type(exc).__name__}); they were revoked, run apply again"
        ) from None
    for agent_id, name in zip(minted, names, strict=True):
        print(f"Stored the new key of {agent_id} in {SM_SCHEME}{name}")
