"""The ECS task definitions the module plans run CLI verbs that exist, on the components'
default ports, as the image's non-root user, with the config from the environment."""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

import pytest
import yaml

from meterline.cli.main import build_parser
from tests.infra.conftest import Deployment
from tests.infra.terraform import output, resources

SERVERS = {"gateway": "gateway", "collector": "collector", "dashboard": "dashboard"}


def containers(deployment: Deployment) -> dict[str, list[dict[str, Any]]]:
    planned = resources(deployment.plan, "aws_ecs_task_definition")
    return {
        re.sub(r'^aws_ecs_task_definition\.this\["(.+)"\]$', r"\1", address): json.loads(task["container_definitions"])
        for address, task in planned.items()
    }


def main_container(deployment: Deployment, task: str) -> dict[str, Any]:
    (container,) = [c for c in containers(deployment)[task] if c["name"] == task]
    return container


def verb_parser(verb: str) -> argparse.ArgumentParser:
    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    chosen: argparse.ArgumentParser = verbs.choices[verb]
    return chosen


def default_of(verb: str, option: str) -> Any:
    action = next(a for a in verb_parser(verb)._actions if option in a.option_strings)
    return action.default


def test_the_module_plans_every_component(deployment: Deployment) -> None:
    assert set(containers(deployment)) == {"gateway", "collector", "dashboard", "analytics", "alarms", "keys"}
    services = resources(deployment.plan, "aws_ecs_service")
    assert {s["name"] for s in services.values()} == {"gateway", "collector", "dashboard"}
    for service in services.values():
        assert service["deployment_circuit_breaker"] == [{"enable": True, "rollback": True}]


@pytest.mark.parametrize("task", ["gateway", "collector", "dashboard", "analytics", "alarms", "keys"])
def test_every_command_is_a_cli_verb_that_exists(deployment: Deployment, task: str) -> None:
    container = main_container(deployment, task)
    try:
        args = build_parser().parse_args(container["command"])
    except SystemExit as exc:  # argparse's way of refusing
        pytest.fail(f"{task}: meterline {' '.join(container['command'])} is not a valid command ({exc})")
    assert callable(args.run)
    assert str(args.config) == "env:METERLINE_CONFIG_YAML"
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert yaml.safe_load(env["METERLINE_CONFIG_YAML"]) == yaml.safe_load(output(deployment.plan, "config_yaml"))
    assert container["user"] == "10001:10001" and container["readonlyRootFilesystem"] is True


@pytest.mark.parametrize("task", sorted(SERVERS))
def test_server_ports_are_the_components_defaults(deployment: Deployment, task: str) -> None:
    container = main_container(deployment, task)
    args = build_parser().parse_args(container["command"])
    assert args.port == default_of(SERVERS[task], "--port")
    assert args.host == "0.0.0.0"  # inside the task's own network namespace; security groups guard it
    exposed = [p["containerPort"] for p in container["portMappings"]]
    assert exposed[0] == args.port
    if task == "collector":
        help_text = next(a for a in verb_parser("collector")._actions if "--grpc-port" in a.option_strings).help
        documented = re.search(r"default: (\d+)", help_text or "")
        assert documented and args.grpc_port == int(documented.group(1)) == exposed[1]


def test_load_balancers_point_at_the_ports_the_containers_serve(deployment: Deployment) -> None:
    groups = resources(deployment.plan, "aws_lb_target_group")
    ports = {address: group["port"] for address, group in groups.items()}
    assert ports["aws_lb_target_group.gateway"] == default_of("gateway", "--port")
    assert ports["aws_lb_target_group.dashboard"] == default_of("dashboard", "--port")
    assert ports['aws_lb_target_group.collector["http"]'] == default_of("collector", "--port")
    assert groups["aws_lb_target_group.gateway"]["health_check"][0]["path"] == "/health/readiness"


def test_state_volume_only_where_marts_live(deployment: Deployment) -> None:
    for task in ("dashboard", "analytics", "alarms"):
        env = {e["name"]: e["value"] for e in main_container(deployment, task)["environment"]}
        assert env["METERLINE_STORAGE__LOCAL_DIR"] == "/mnt/meterline-state"
    for task in ("gateway", "collector", "keys"):
        env = {e["name"]: e["value"] for e in main_container(deployment, task)["environment"]}
        assert "METERLINE_STORAGE__LOCAL_DIR" not in env


def test_span_export_adds_a_sidecar_the_gateway_sends_to(deployment: Deployment) -> None:
    planned = resources(deployment.plans["span_export"], "aws_ecs_task_definition")
    gateway, otel = json.loads(planned['aws_ecs_task_definition.this["gateway"]']["container_definitions"])
    assert otel["name"] == "otel" and otel["command"] == ["--config=env:OTELCOL_CONFIG"]
    env = {e["name"]: e["value"] for e in gateway["environment"]}
    sidecar = yaml.safe_load({e["name"]: e["value"] for e in otel["environment"]}["OTELCOL_CONFIG"])
    receiver = sidecar["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert env["METERLINE_TELEMETRY__COLLECTOR"] == f"http://{receiver}"
    pipelines = sidecar["service"]["pipelines"]
    assert pipelines["logs"]["exporters"] == ["otlphttp/meterline"]  # usage records only to the ledger
    assert pipelines["traces"]["exporters"] == ["otlphttp/meterline", "otlphttp/extra"]
    config = yaml.safe_load(env["METERLINE_CONFIG_YAML"])
    assert sidecar["exporters"]["otlphttp/meterline"]["endpoint"] == config["telemetry"]["collector"]
    assert config["telemetry"]["capture_content"] is False
    assert {s["name"] for s in otel["secrets"]} == {"METERLINE_INGEST_TOKEN", "SPAN_EXPORT_AUTHORIZATION"}
    others = resources(deployment.plan, "aws_ecs_task_definition")['aws_ecs_task_definition.this["gateway"]']
    assert len(json.loads(others["container_definitions"])) == 1  # no sidecar without span_export


def test_writable_paths_are_the_images_home_and_tmp(deployment: Deployment) -> None:
    from tests.infra.dockerfile import parse
    from tests.infra.test_dockerfile import DOCKERFILE

    runtime = parse(DOCKERFILE)[-1]
    workdir = runtime.all("WORKDIR")[-1].value
    user = runtime.all("USER")[-1].value
    config = yaml.safe_load(output(deployment.plan, "config_yaml"))
    assert config["storage"]["local_dir"].startswith(workdir + "/")
    for task in ("gateway", "collector", "dashboard", "analytics", "alarms", "keys"):
        container = main_container(deployment, task)
        assert {m["containerPath"] for m in container["mountPoints"]} >= {workdir, "/tmp"}
        assert container["user"] == user
    (access_point,) = resources(deployment.plan, "aws_efs_access_point").values()
    assert f"{access_point['posix_user'][0]['uid']}:{access_point['posix_user'][0]['gid']}" == user
