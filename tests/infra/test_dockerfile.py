"""infra/docker/Dockerfile, checked without a container runtime: what it copies exists, it runs
as a non-root user, its entrypoint is the installed console script, its health check is a route
the gateway serves, its base is pinned and its install is the Makefile's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from starlette.routing import Route

from gateway.app import create_app
from gateway.telemetry.sink import InMemorySink
from meterline.config import load_config
from tests.conftest import NATIVE_EXTENSIONS
from tests.infra.dockerfile import Instruction, Stage, parse

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "infra" / "docker" / "Dockerfile"
PINNED_TAG = re.compile(r"^[\w./-]+:\d+\.\d+\.\d+-[a-z]+-?[a-z]*$")  # python:3.11.14-slim-bookworm
PINNED_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE)


def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


def last(stage: Stage, keyword: str) -> Instruction:
    found = stage.all(keyword)
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def test_the_image_has_a_build_stage_and_a_runtime_stage(stages: list[Stage]) -> None:
    assert [s.name for s in stages] == ["build", "runtime"]
    compiler = " ".join(i.value for i in stages[0].all("RUN"))
    assert "gcc" in compiler
    assert not any("gcc" in i.value for i in runtime(stages).all("RUN")), "the runtime stage needs no compiler"


def test_every_copy_source_exists_in_the_repository(stages: list[Stage]) -> None:
    copied = 0
    for stage in stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            words = instruction.words()
            if any(w.startswith("--from") for w in words):
                continue
            sources = [w for w in words if not w.startswith("--")][:-1]
            assert sources, f"line {instruction.line}: COPY without a source"
            for source in sources:
                assert (REPO / source).exists(), f"line {instruction.line}: {source} is not in the repository"
                copied += 1
    assert copied >= 5


def test_no_data_secret_or_venv_is_copied(stages: list[Stage]) -> None:
    for stage in stages:
        for instruction in stage.all("COPY") + stage.all("ADD"):
            for word in instruction.words():
                assert not re.search(r"(^|/)(data|\.venv|\.git|meterline\.yaml|.*\.pem|.*\.key)(/|$)", word), word
        assert not any("SECRET" in i.value.upper() or "PASSWORD" in i.value.upper() for i in stage.all("ENV"))


def test_the_build_context_holds_only_what_is_copied(stages: list[Stage]) -> None:
    rules = [line for line in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines() if line.strip()]
    rules = [line for line in rules if not line.startswith("#")]
    assert rules[0] == "*", "deny everything first, then re-include what the build copies"
    included = {line[1:].rstrip("/") for line in rules if line.startswith("!")}
    for instruction in stages[0].all("COPY"):
        for source in [w for w in instruction.words() if not w.startswith("--")][:-1]:
            assert source.rstrip("/") in included, f"{source} is copied but ignored by .dockerignore"


def test_the_runtime_user_is_not_root(stages: list[Stage]) -> None:
    user = last(runtime(stages), "USER").value.split(":")[0]
    assert user not in ("", "0", "root")
    assert user.isdigit(), "a numeric uid lets an orchestrator verify runAsNonRoot without reading /etc/passwd"


def test_the_entrypoint_is_an_installed_console_script(stages: list[Stage]) -> None:
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    entrypoint = last(runtime(stages), "ENTRYPOINT").words()
    assert len(entrypoint) == 1
    script = Path(entrypoint[0])
    assert script.name in scripts
    venv = script.parent.parent
    installs = " ".join(i.value for i in stages[0].all("RUN"))
    assert f"venv {venv}" in installs and f"{venv}/bin/python -m pip install" in installs
    assert any(f"--from=build {venv}" in i.value for i in runtime(stages).all("COPY"))
    command = last(runtime(stages), "CMD").words()
    assert command[0] == "gateway" and "--host" in command


def test_the_healthcheck_path_is_served_by_the_gateway(stages: list[Stage]) -> None:
    check = last(runtime(stages), "HEALTHCHECK").value
    url = re.search(r"http://127\.0\.0\.1:(\d+)(/[\w/.-]*)", check)
    assert url, check
    config, _ = load_config(None)
    app = create_app(config, sink=InMemorySink())
    served = {r.path for r in app.routes if isinstance(r, Route) and r.methods and "GET" in r.methods}
    assert url.group(2) in served
    assert int(url.group(1)) == 4000  # the gateway's default port, which CMD keeps


def test_every_base_image_is_pinned(stages: list[Stage]) -> None:
    for stage in stages:
        assert "$" not in stage.base, f"unresolved ARG in FROM {stage.base}"
        assert PINNED_DIGEST.search(stage.base) or PINNED_TAG.match(stage.base), f"{stage.base} is not pinned"
        assert not stage.base.endswith(":latest")


def test_the_install_is_the_makefiles_and_requires_the_native_helpers(stages: list[Stage]) -> None:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "-m pip install --quiet --upgrade pip" in makefile
    assert "-m pip install --quiet -c constraints.txt -e '.[dev]'" in makefile
    runs = " ".join(i.value for i in stages[0].all("RUN"))
    assert "-m pip install --no-cache-dir --upgrade pip" in runs
    assert "-m pip install --no-cache-dir -c constraints.txt ." in runs
    for module in NATIVE_EXTENSIONS:
        assert module in runs, f"the build does not require {module}"


def test_prices_come_from_the_installed_package(stages: list[Stage]) -> None:
    env = " ".join(i.value for i in runtime(stages).all("ENV"))
    assert "LITELLM_LOCAL_MODEL_COST_MAP=True" in env
