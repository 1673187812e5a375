"""Where each process's data goes when the ledger is local and when it is in S3: an S3 URL is
passed on as a URL (never folded into a local path such as `s3:/b/p`), and the local state
(key store, spool, WAL, marts) lives under `storage.local_dir`."""

from __future__ import annotations

import argparse
from pathlib import Path

from meterline.cli.commands import load
from meterline.cli.up import Supervisor


def _args(config: Path, data_dir: str | None) -> argparse.Namespace:
    return argparse.Namespace(config=config, data_dir=data_dir)


def _config(tmp_path: Path, data_dir: str) -> Path:
    path = tmp_path / "meterline.yaml"
    path.write_text(f"storage:\n  data_dir: {data_dir}\n  local_dir: {tmp_path / 'state'}\n")
    return path


def test_s3_ledger_keeps_local_state_in_local_dir_and_children_get_the_url(tmp_path: Path) -> None:
    args = _args(_config(tmp_path, "s3://ledger/prod"), None)
    config, layout = load(args)
    assert layout.root == (tmp_path / "state").resolve()
    assert Supervisor(args, config, layout)._data_dir() == "s3://ledger/prod"


def test_data_dir_flag_wins_and_a_local_ledger_is_its_own_layout(tmp_path: Path) -> None:
    args = _args(_config(tmp_path, "s3://ledger/prod"), str(tmp_path / "here"))
    config, layout = load(args)
    assert layout.root == (tmp_path / "here").resolve()
    assert Supervisor(args, config, layout)._data_dir() == str((tmp_path / "here").resolve())
