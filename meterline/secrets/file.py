"""`file://PATH[#field]`: a mounted secret (Kubernetes, ECS, Docker). Trailing newlines are
dropped; `#field` picks one field of a JSON file. The version is the file's modification time."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from meterline.secrets.base import SecretVersion, now
from meterline.secrets.fields import pick_field
from meterline.secrets.reference import Reference


class FileBackend:
    name = "file"

    def fetch(self, reference: Reference) -> SecretVersion:
        path = Path(reference.target)
        try:
            stat = path.stat()
            text = path.read_text(encoding="utf-8").rstrip("\r\n")
        except FileNotFoundError:
            raise reference.error(f"no file at {path}") from None
        except IsADirectoryError:
            raise reference.error(f"{path} is a directory") from None
        except OSError as exc:
            raise reference.error(f"cannot read {path} ({exc.strerror})") from None
        except UnicodeDecodeError:
            raise reference.error(f"{path} is not UTF-8 text") from None
        if not text:
            raise reference.error(f"{path} is empty")
        created = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC)
        return SecretVersion(pick_field(reference, text), str(stat.st_mtime_ns), now(), created)
