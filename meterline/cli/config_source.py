"""`--config env:NAME`: the config file's text from an environment variable.

A container gets its meterline.yaml this way without a mounted file (the Terraform module in
infra/terraform renders it into the task definition; it holds secret references, never secret
values). The text is written once to a private temporary file (0600, removed at exit) and the
verb reads that path as it reads any `--config FILE`, so errors name the variable's file.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import tempfile
from pathlib import Path

from meterline.config import ConfigError

PREFIX = "env:"


def materialize(args: argparse.Namespace, environ: dict[str, str] | None = None) -> None:
    """Replace `args.config` = `env:NAME` by a file holding `$NAME`; anything else is left alone."""
    config = getattr(args, "config", None)
    if config is None or not str(config).startswith(PREFIX):
        return
    name = str(config)[len(PREFIX) :]
    text = (os.environ if environ is None else environ).get(name, "")
    if not name or not text.strip():
        raise ConfigError(str(config), None, f"environment variable {name or '(no name)'} is not set or empty")
    directory = tempfile.mkdtemp(prefix="meterline-config-")
    atexit.register(shutil.rmtree, directory, True)
    path = Path(directory) / f"{name}.yaml"
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(text)
    args.config = path
