"""The seam between the stack and the container: does the task definition say what the startup reads?

up.yml runs once against the emulator with the demo settings; the tests read
back what it registered (the service's task definition, its target group and
path rule, the secrets) and hold it against the container's own contract,
files/image/nbstack_runtime/settings.py, and against the running health
sidecar. A name added on one side only, a port or a health path changed on
one side only, fails here.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from nbstack_devkit.demo import SETTINGS_FILE
from nbstack_devkit.emulator import Emulator
from nbstack_devkit.paths import IMAGE_DIR, ROOT
from nbstack_devkit.playbooks import Playbooks, ok
from nbstack_devkit.vault import random_values, write_vault
from nbstack_devkit.waits import free_port
from nbstack_runtime import sidecar
from nbstack_runtime.autosave import RECORD_TIMEOUT_SECONDS
from nbstack_runtime.settings import SECRET_VARIABLES, VARIABLES, Settings

PREFIX = "contract"
CONTAINER = "notebook"
#: Variables the container reads that the task definition leaves to the
#: image's default on purpose, each with the reason. Keep this short: anything
#: a person or the stack should decide belongs in the task definition.
LEFT_TO_THE_IMAGE = {
    "NBSTACK_AUTOSAVE_TIMEOUT": "fixed below the container's stopTimeout with the outcome's tag (checked below), "
    "not a per-person setting",
    "NBSTACK_IDLE_POLL_SECONDS": "how often the idle watcher looks; a knob for tests, the idle timeout itself is set",
}


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Run up.yml on an empty emulator; yield what it registered."""
    folder = tmp_path_factory.mktemp("contract")
    vault = write_vault(folder, random_values())
    emulator = Emulator().start()
    try:
        playbooks = Playbooks(emulator, SETTINGS_FILE, vault)
        # No task runs in the emulator here: up.yml does not wait for a health check.
        ok(playbooks.up(PREFIX, "-e", "instance_start_timeout=0"))
        yield _read_back(playbooks)
    finally:
        emulator.stop()


def _read_back(playbooks: Playbooks) -> dict[str, Any]:
    emulator, app = playbooks.emulator, playbooks.app
    stack = emulator.client("cloudformation").describe_stacks(StackName=f"{app}-{PREFIX}")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    ecs, elbv2 = emulator.client("ecs"), emulator.client("elbv2")
    service = ecs.describe_services(cluster=outputs["ClusterName"], services=[outputs["ServiceName"]])["services"][0]
    task_definition = ecs.describe_task_definition(taskDefinition=service["taskDefinition"])["taskDefinition"]
    target_group = elbv2.describe_target_groups(TargetGroupArns=[outputs["TargetGroupArn"]])["TargetGroups"][0]
    rule = elbv2.describe_rules(RuleArns=[outputs["ListenerRuleArn"]])["Rules"][0]
    secretsmanager = emulator.client("secretsmanager")
    container = next(c for c in task_definition["containerDefinitions"] if c["name"] == CONTAINER)
    resolved = {s["name"]: secretsmanager.get_secret_value(SecretId=s["valueFrom"])["SecretString"]
                for s in container.get("secrets", [])}
    return {
        "service": service,
        "task_definition": task_definition,
        "container": container,
        "environment": {e["name"]: e["value"] for e in container.get("environment", [])},
        "secrets": {s["name"]: s["valueFrom"] for s in container.get("secrets", [])},
        "secret_values": resolved,
        "target_group": target_group,
        "rule": rule,
        "app": app,
    }


def _read_by_container() -> set[str]:
    return {variable.name for variable in VARIABLES}


def test_every_variable_the_container_reads_is_known_to_settings() -> None:
    """No hook or module reads an NBSTACK_ name outside the contract in settings.py."""
    sources = [p for p in (IMAGE_DIR / "nbstack_runtime").glob("*.py")] + list((IMAGE_DIR / "before-notebook.d").iterdir())
    mentioned = {name for path in sources for name in re.findall(r"\bNBSTACK_[A-Z0-9_]+\b", path.read_text())}
    assert mentioned <= _read_by_container(), f"read but not in settings.VARIABLES: {sorted(mentioned - _read_by_container())}"


def test_every_secret_the_container_reads_comes_from_secrets_manager(registered: dict[str, Any]) -> None:
    assert set(registered["secrets"]) == set(SECRET_VARIABLES)
    assert not set(registered["environment"]) & set(SECRET_VARIABLES), "a secret in the plain environment"
    for name, arn in registered["secrets"].items():
        assert arn.startswith("arn:aws:secretsmanager:"), f"{name} is not referenced by ARN: {arn}"
        assert f":secret:{registered['app']}/{PREFIX}/" in arn
        assert registered["secret_values"][name], f"{name} resolves to an empty secret"


def test_every_variable_the_task_sets_is_read_and_every_one_read_is_set(registered: dict[str, Any]) -> None:
    read = _read_by_container() - set(SECRET_VARIABLES)
    environment = set(registered["environment"])
    assert environment <= read, f"set by the task definition but read by nothing: {sorted(environment - read)}"
    missing = read - environment - set(LEFT_TO_THE_IMAGE)
    assert not missing, f"read by the container but not set by the task definition: {sorted(missing)}"
    stale = set(LEFT_TO_THE_IMAGE) & environment
    assert not stale, f"LEFT_TO_THE_IMAGE names variables the task definition now sets: {sorted(stale)}"
    assert set(LEFT_TO_THE_IMAGE) <= _read_by_container(), "LEFT_TO_THE_IMAGE names a variable nothing reads"


def test_the_registered_values_satisfy_the_container(registered: dict[str, Any]) -> None:
    settings = Settings.from_environ({**registered["environment"], **registered["secret_values"], "HOME": "/home/jovyan"})
    assert settings.prefix == PREFIX
    mounts = {m["containerPath"] for m in registered["container"]["mountPoints"]}
    assert str(settings.work_dir) in mounts, "the work directory is not the mounted volume"
    # The autosave must finish, and its outcome be tagged, before ECS's SIGKILL:
    # with the value the task sets, and with any value the container accepts.
    stop_timeout = registered["container"]["stopTimeout"]
    assert settings.autosave_timeout + RECORD_TIMEOUT_SECONDS < stop_timeout
    (autosave_timeout,) = [v for v in VARIABLES if v.name == "NBSTACK_AUTOSAVE_TIMEOUT"]
    assert autosave_timeout.parse is not None
    with pytest.raises(ValueError):
        autosave_timeout.parse(str(stop_timeout - RECORD_TIMEOUT_SECONDS))


def test_ports_match_the_container_the_target_group_and_the_service(registered: dict[str, Any]) -> None:
    settings = Settings.from_environ({**registered["environment"], "HOME": "/home/jovyan"})
    target_group = registered["target_group"]
    mapped = {m["containerPort"]: m.get("hostPort") for m in registered["container"]["portMappings"]}
    assert mapped == {settings.notebook_port: settings.notebook_port, settings.health_port: settings.health_port}
    assert target_group["Port"] == settings.notebook_port
    assert int(target_group["HealthCheckPort"]) == settings.health_port
    balancers = registered["service"]["loadBalancers"]
    if balancers:
        assert [(b["containerName"], int(b["containerPort"])) for b in balancers] == [(CONTAINER, settings.notebook_port)]
    else:
        # The emulator drops a service's load balancers; the template is the record then.
        entry, notebook_port_env, first_mapping = _template_service_wiring()
        assert entry["ContainerName"] == CONTAINER
        assert entry["ContainerPort"] == notebook_port_env == first_mapping, "service, env and port mapping disagree"


def test_the_health_check_path_is_what_the_sidecar_answers(registered: dict[str, Any], tmp_path: Path) -> None:
    import os

    path = registered["target_group"]["HealthCheckPath"]
    pid_file = tmp_path / "jupyter.pid"
    pid_file.write_text(f"{os.getpid()}\n")
    server = sidecar.serve(free_port(), pid_file, host="127.0.0.1")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}{path}"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                code = response.status
        except urllib.error.HTTPError as error:
            code = error.code
        assert code != 404, f"the sidecar does not serve the target group's health path {path}"
        # This process is no Jupyter server, so "not healthy" (503) is the right answer here;
        # 200 for a live server is tests/image/test_container.py's business.
        assert code in (200, 503), f"the sidecar answers {code} on {path}"
        assert registered["target_group"]["Matcher"]["HttpCode"] == "200"
    finally:
        server.shutdown()
        server.server_close()


def test_the_base_url_is_the_path_rule(registered: dict[str, Any]) -> None:
    settings = Settings.from_environ({**registered["environment"], "HOME": "/home/jovyan"})
    patterns = {value for condition in registered["rule"]["Conditions"] if condition["Field"] == "path-pattern"
                for value in condition.get("PathPatternConfig", {}).get("Values", condition.get("Values", []))}
    assert settings.base_url + "*" in patterns, f"{settings.base_url} is not routed by {patterns}"
    assert registered["rule"]["Actions"][0]["TargetGroupArn"] == registered["target_group"]["TargetGroupArn"]


def _template_service_wiring() -> tuple[dict[str, Any], Any, Any]:
    """From instance.yml: the service's LoadBalancers entry, NBSTACK_NOTEBOOK_PORT's value, the first port mapping."""

    class Loader(yaml.SafeLoader):
        pass

    def tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {f"!{suffix}": value}

    Loader.add_multi_constructor("!", tagged)
    template = yaml.load((ROOT / "files" / "cloudformation" / "instance.yml").read_text(), Loader=Loader)  # noqa: S506
    (entry,) = template["Resources"]["Service"]["Properties"]["LoadBalancers"]
    container = template["Resources"]["TaskDefinition"]["Properties"]["ContainerDefinitions"][0]
    env = {item["Name"]: item["Value"] for item in container["Environment"]}
    return entry, env["NBSTACK_NOTEBOOK_PORT"], container["PortMappings"][0]["ContainerPort"]


def test_the_container_starts_as_root_for_the_image_to_drop_to_the_notebook_user(registered: dict[str, Any]) -> None:
    """tini and start.sh keep the secrets in their environment: only as root is it out of the notebook user's reach."""
    assert registered["container"].get("user") == "0"
    assert not set(registered["environment"]) & {"GRANT_SUDO", "NB_USER", "NB_UID", "CHOWN_HOME", "CHOWN_EXTRA"}
