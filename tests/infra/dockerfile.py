"""A small Dockerfile reader for the image's tests: instructions with their line continuations
joined, comments dropped, `ARG` defaults substituted, exec-form (JSON) arguments decoded.

Covers the subset infra/docker/Dockerfile uses (no heredocs, no escape directive, no ONBUILD);
anything else it meets is kept as a plain instruction, so a test over it fails loudly rather
than passing by not seeing it."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_VARIABLE = re.compile(r"\$\{(\w+)\}|\$(\w+)")


@dataclass
class Instruction:
    keyword: str  # upper case: FROM, RUN, COPY, ...
    value: str  # the arguments as written, continuations joined, ARG defaults substituted
    line: int  # where it starts (1-based)

    def words(self) -> list[str]:
        """Exec form (a JSON array) decoded; otherwise split like a shell would."""
        stripped = self.value.strip()
        if stripped.startswith("["):
            decoded: list[str] = json.loads(stripped)
            return decoded
        return shlex.split(stripped)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if raw.rstrip().endswith("\\"):
            pending.append(raw.rstrip()[:-1])
            continue
        pending.append(raw)
        lines.append((start, " ".join(part.strip() for part in pending)))
        pending = []
    if pending:
        raise ValueError(f"line {start}: a continuation runs past the end of the file")
    return lines


def parse(path: Path) -> list[Stage]:
    """The build stages in order; global ARGs (before the first FROM) substitute into FROM."""
    args: dict[str, str] = {}
    stages: list[Stage] = []

    def substitute(value: str) -> str:
        return _VARIABLE.sub(lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)

    for line, text in _logical_lines(path.read_text(encoding="utf-8")):
        keyword, _, rest = text.partition(" ")
        keyword = keyword.upper()
        if keyword == "ARG":
            name, _, default = rest.strip().partition("=")
            if default or name not in args:
                args[name] = default
            if stages:
                stages[-1].instructions.append(Instruction(keyword, rest.strip(), line))
            continue
        if keyword == "FROM":
            words = substitute(rest).split()
            words = [w for w in words if not w.startswith("--platform")]
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=stage_name))
            continue
        if not stages:
            raise ValueError(f"line {line}: {keyword} before the first FROM")
        stages[-1].instructions.append(Instruction(keyword, substitute(rest.strip()), line))
    return stages
