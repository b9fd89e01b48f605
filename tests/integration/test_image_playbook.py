"""image.yml against the emulated ECR, with a stand-in for the Docker client.

No Docker engine runs on this machine or in CI, so `docker build` cannot
work here. A fake `docker`, first on PATH, stands in for it: it records every
call (arguments and what came on stdin) and exits with a chosen code. The
playbook, the persistent stack, ECR's answers (tag present or not, the
authorization token) are all real; only the build and the push are not done.

One scenario for the module, in order: a new account (no stacks: image.yml
creates the network and the persistent stack, then Docker fails); both
images already in ECR; only the CPU image in ECR; neither (at -vvv).
"""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path
from typing import Any

import pytest
from team import APP

from ansible_collections.nbstack.cloud.plugins.plugin_utils import image_context
from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.paths import ROOT
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok

PREFIX = "alice"
REPOSITORY = f"{APP}/notebook"
NO_DAEMON = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"


def content_tag() -> str:
    """The tag the role computes, from the collection's own code."""
    return image_context.content_tag(ROOT / "files" / "image")


class FakeDocker:
    """A `docker` executable that records its calls to a file instead of talking to an engine."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.log = folder / "calls.jsonl"
        self.executable = folder / "docker"

    def install(self, exit_code: int, stderr: str = "") -> None:
        """`stderr`: what it prints there, `{stdin}` replaced by what came on stdin (a careless client's echo)."""
        self.executable.write_text(
            f"#!{sys.executable}\n"
            "import json, os, sys\n"
            "stdin = '' if sys.stdin.isatty() else sys.stdin.read()\n"
            f"with open({str(self.log)!r}, 'a') as log:\n"
            "    call = {'argv': sys.argv[1:], 'stdin': stdin, 'buildkit': os.environ.get('DOCKER_BUILDKIT')}\n"
            "    log.write(json.dumps(call) + '\\n')\n"
            f"sys.stderr.write({stderr!r}.replace('{{stdin}}', stdin.strip()))\n"
            f"sys.exit({exit_code})\n"
        )
        self.executable.chmod(self.executable.stat().st_mode | stat.S_IXUSR)
        self.log.write_text("")

    def calls(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]


class WithFakeDocker(Playbooks):
    """The project's playbook runner, with the fake docker first on PATH."""

    def __init__(self, base: Playbooks, docker: FakeDocker) -> None:
        super().__init__(base.emulator, base.settings, base.vault)
        self.docker = docker

    def env(self) -> dict[str, str]:
        env = super().env()
        env["PATH"] = f"{self.docker.folder}:{env['PATH']}"
        return env

    def image(self, *extra: str) -> PlaybookRun:
        return self.run("image.yml", "-e", f"prefix={PREFIX}", *extra, with_vault=False)


def put_image(aws: Clients, tag: str) -> None:
    """An image manifest under the tag, as a push would leave it."""
    config = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(tag),
              "digest": "sha256:" + (tag.encode().hex() * 8)[:64]}
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": config, "layers": []}
    aws.ecr.put_image(repositoryName=REPOSITORY, imageManifest=json.dumps(manifest), imageTag=tag)


def delete_images(aws: Clients) -> None:
    images = aws.ecr.list_images(repositoryName=REPOSITORY)["imageIds"]
    if images:
        aws.ecr.batch_delete_image(repositoryName=REPOSITORY, imageIds=images)


@pytest.fixture(scope="module")
def scenario(emulator: Emulator, playbooks: Playbooks, aws: Clients,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    docker = FakeDocker(tmp_path_factory.mktemp("fake-docker"))
    runner = WithFakeDocker(playbooks, docker)
    tag = content_tag()
    result: dict[str, Any] = {"tag": tag}

    emulator.reset()
    docker.install(exit_code=1)
    result["no_stack"] = runner.image()
    result["no_stack_calls"] = docker.calls()
    result["stacks_after_first_run"] = {
        stack["StackName"]: stack["StackStatus"] for stack in aws.cloudformation.describe_stacks()["Stacks"]
    }

    result["repository_uri"] = aws.ecr.describe_repositories(repositoryNames=[REPOSITORY])["repositories"][0]["repositoryUri"]

    put_image(aws, tag)
    put_image(aws, f"gpu-{tag}")
    docker.install(exit_code=1)
    result["unchanged"] = runner.image()
    result["unchanged_calls"] = docker.calls()

    delete_images(aws)
    put_image(aws, tag)
    docker.install(exit_code=0)
    result["gpu_only"] = runner.image()
    result["gpu_only_calls"] = docker.calls()

    delete_images(aws)
    docker.install(exit_code=0)
    result["both"] = runner.image("-vvv")
    result["both_calls"] = docker.calls()
    result["token"] = aws.ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]

    docker.install(exit_code=1, stderr=NO_DAEMON + " (sent: {stdin})\n")
    result["no_daemon"] = runner.image("-vvv")
    result["no_daemon_calls"] = docker.calls()
    return result


def test_syntax(playbooks: Playbooks) -> None:
    ok(playbooks.run("image.yml", "--syntax-check", settings=False, with_vault=False))


def test_on_a_new_account_it_creates_the_team_stacks_first(scenario: dict[str, Any]) -> None:
    """README order: image.yml (one-time team set-up), then up.yml; no vault password either way."""
    run = scenario["no_stack"]
    assert scenario["stacks_after_first_run"] == {f"{APP}-network": "CREATE_COMPLETE", f"{APP}-persistent": "CREATE_COMPLETE"}
    assert f"The stack {APP}-persistent does not exist" not in run.text
    # It got as far as Docker: the stand-in was asked to log in, and failed as told.
    assert run.returncode != 0
    assert [call["argv"][0] for call in scenario["no_stack_calls"]] == ["login"]
    assert "vault" not in " ".join(run.args)


def test_pushed_content_is_not_rebuilt(scenario: dict[str, Any]) -> None:
    run = ok(scenario["unchanged"])
    assert run.changed == 0, run.output[-3000:]
    assert scenario["unchanged_calls"] == [], "docker was called although both tags are in ECR"
    uri, tag = scenario["repository_uri"], scenario["tag"]
    assert f"cpu image {uri}:{tag} unchanged, not rebuilt" in run.text
    assert f"gpu image {uri}:gpu-{tag} unchanged, not rebuilt" in run.text


def expected_calls(uri: str, tags: dict[str, str]) -> list[list[str]]:
    registry = uri.split("/", 1)[0]
    context = str(ROOT / "files" / "image")
    builds = [
        ["build", "--platform", "linux/amd64", "--tag", f"{uri}:{tag}", "--build-arg", f"VARIANT={variant}", context]
        for variant, tag in tags.items()
    ]
    pushes = [["push", f"{uri}:{tag}"] for tag in tags.values()]
    return [["login", "--username", "AWS", "--password-stdin", registry], *builds, *pushes]


def test_only_the_missing_variant_is_built(scenario: dict[str, Any]) -> None:
    run = ok(scenario["gpu_only"])
    uri, tag = scenario["repository_uri"], scenario["tag"]
    calls = [call["argv"] for call in scenario["gpu_only_calls"]]
    assert calls == expected_calls(uri, {"gpu": f"gpu-{tag}"})
    assert run.changed == 2  # the build task and the push task
    assert f"cpu image {uri}:{tag} unchanged, not rebuilt" in run.text
    assert f"gpu image {uri}:gpu-{tag} built and pushed" in run.text


def test_missing_images_are_logged_in_built_and_pushed(scenario: dict[str, Any]) -> None:
    run = ok(scenario["both"])
    uri, tag = scenario["repository_uri"], scenario["tag"]
    calls = scenario["both_calls"]
    assert [call["argv"] for call in calls] == expected_calls(uri, {"cpu": tag, "gpu": f"gpu-{tag}"})
    # BuildKit builds only the stage of the variant's base image, not both bases.
    assert {call["buildkit"] for call in calls if call["argv"][0] == "build"} == {"1"}
    assert run.changed == 2  # a looped task counts once in the recap
    assert f"cpu image {uri}:{tag} built and pushed" in run.text


def test_token_goes_on_stdin_only_and_never_into_output(scenario: dict[str, Any]) -> None:
    import base64

    token = scenario["token"]
    user, _, password = base64.b64decode(token).decode().partition(":")
    assert user == "AWS" and password
    login = scenario["both_calls"][0]
    assert login["stdin"].strip() == password
    for call in scenario["both_calls"]:
        assert password not in " ".join(call["argv"])
    output = scenario["both"].output
    assert "<ansible.legacy.command" in output or "ESTABLISH LOCAL CONNECTION" in output  # it ran at -vvv
    assert password not in output
    assert token not in output


def test_a_failed_docker_login_shows_why_but_not_the_password(scenario: dict[str, Any]) -> None:
    import base64

    run = scenario["no_daemon"]
    assert run.returncode != 0
    assert [call["argv"][0] for call in scenario["no_daemon_calls"]] == ["login"]  # nothing built or pushed
    # The cause, as Docker printed it, with the password it echoed cut out.
    assert NO_DAEMON in run.output
    assert "<registry password>" in run.output
    assert "Nothing was built or pushed" in run.output
    password = base64.b64decode(scenario["token"]).decode().partition(":")[2]
    assert scenario["no_daemon_calls"][0]["stdin"].strip() == password
    assert password not in run.output
    assert scenario["token"] not in run.output
