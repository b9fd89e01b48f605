"""The names every layer agrees on are the same in each layer.

The Ansible side takes them from the collection's contract
(plugins/module_utils/contract.py), the container from its own
(nbstack_runtime/contract.py: the image ships without the collection), and
the static templates spell them out. A name that differs between two of them
breaks a link the emulator may not show: a tag status.yml never finds, a
secret the container never reads, a prefix one layer accepts and another
refuses.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from cfnlint.decode import decode

import nbstack_runtime.contract as runtime
from ansible_collections.nbstack.cloud.plugins.module_utils import contract

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ("network", "persistent", "instance")


def template(name: str) -> dict[str, Any]:
    decoded, matches = decode(str(ROOT / "files" / "cloudformation" / f"{name}.yml"))
    assert not matches, matches
    return dict(decoded)


def test_tag_keys_agree() -> None:
    for name in ("APP_TAG", "PREFIX_TAG", "LAST_ACTIVITY_TAG", "STOPPED_AT_TAG", "STOP_REASON_TAG", "AUTOSAVE_TAG"):
        assert getattr(runtime, name) == getattr(contract, name), name


def test_the_secret_variables_are_the_contracts_secrets() -> None:
    assert tuple(secret.variable for secret in contract.SECRETS) == runtime.SECRET_VARIABLES


def body(pattern: str) -> str:
    """A whole-text pattern without its anchors: ^...$ (a template's, matched whole by CloudFormation) or ^...\\Z."""
    return re.sub(r"(\$|\\Z)\Z", "", pattern.removeprefix("^"))


def test_prefix_and_autosave_patterns_agree() -> None:
    assert body(runtime.PREFIX_PATTERN) == body(contract.PREFIX_PATTERN)
    assert runtime.AUTOSAVE_BRANCH_PREFIX == contract.AUTOSAVE_BRANCH_PREFIX
    assert body(runtime.AUTOSAVE_BRANCH_PATTERN) == body(contract.AUTOSAVE_BRANCH_PATTERN)
    branch = runtime.autosave_branch("alice", "20260105T090000Z")
    assert branch.startswith(contract.autosave_folder("alice"))
    assert re.match(contract.AUTOSAVE_BRANCH_PATTERN, branch)


def test_the_contracts_patterns_refuse_a_trailing_newline_even_under_re_match() -> None:
    """Jinja's match test and re.match stop at the pattern's end: $ would let "alice\\n" through."""
    for pattern, good in (
        (contract.PREFIX_PATTERN, "alice"),
        (contract.APP_NAME_PATTERN, "notebook-server"),
        (contract.AUTOSAVE_BRANCH_PATTERN, "autosave/alice/20260105T090000Z"),
        (runtime.PREFIX_PATTERN, "alice"),
        (runtime.AUTOSAVE_BRANCH_PATTERN, "autosave/alice/20260105T090000Z"),
    ):
        assert re.match(pattern, good), pattern
        assert not re.match(pattern, good + "\n"), pattern
        assert not pattern.endswith("$"), pattern


def test_prefixes_that_name_a_shared_stack_are_reserved() -> None:
    assert set(contract.RESERVED_PREFIXES) == set(contract.KINDS) - {"instance"}
    for kind in contract.RESERVED_PREFIXES:
        assert contract.reserved_prefix(kind) == kind
        if kind == "work":
            # The person "team" has the work stack nb-team-work.
            assert contract.stack_name("nb", "instance", "team-work") == contract.stack_name("nb", "work", "team")
        else:
            # Another app, "nb-team", has the shared stack nb-team-<kind>.
            assert contract.stack_name("nb", "instance", f"team-{kind}") == contract.stack_name("nb-team", kind)
        assert contract.reserved_prefix(f"team-{kind}") == kind
    assert contract.reserved_prefix("alice") == ""
    assert contract.reserved_prefix("networker") == ""


def tag_keys(node: Any) -> set[str]:
    """The keys of every Tags list anywhere under node."""
    if isinstance(node, list):
        return set().union(*map(tag_keys, node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found = {tag["Key"] for tag in node.get("Tags", []) if isinstance(tag, dict) and "Key" in tag}
    return found.union(*(tag_keys(value) for value in node.values()))


def test_every_tag_key_in_the_templates_is_a_contract_key() -> None:
    known = {contract.APP_TAG, contract.PREFIX_TAG, contract.KIND_TAG, contract.IMAGE_TAG, "Name"}
    for name in TEMPLATES:
        keys = tag_keys(template(name)["Resources"])
        assert contract.APP_TAG in keys and keys <= known, f"{name}.yml tags with {keys - known}"


def test_the_templates_accept_exactly_the_contracts_names() -> None:
    for name in TEMPLATES:
        assert body(template(name)["Parameters"]["AppName"]["AllowedPattern"]) == body(contract.APP_NAME_PATTERN), name
    assert body(template("instance")["Parameters"]["Prefix"]["AllowedPattern"]) == body(contract.PREFIX_PATTERN)


def test_each_secret_reaches_its_variable_through_its_parameter() -> None:
    (task,) = [r for r in template("instance")["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    (container,) = task["Properties"]["ContainerDefinitions"]
    wired = {entry["Name"]: entry["ValueFrom"] for entry in container["Secrets"]}
    assert wired == {secret.variable: {"Ref": secret.parameter} for secret in contract.SECRETS}


def test_the_execution_role_reads_the_contracts_secret_folder() -> None:
    """Each person's execution role reads that person's folder: <app>/<prefix>/."""
    resource = json.dumps(template("instance")["Resources"]["TaskExecutionRole"])
    assert "secret:" + contract.secrets_folder("${AppName}", "${Prefix}") + "*" in resource
    assert "TaskExecutionRole" not in template("persistent")["Resources"]


def test_up_yml_stores_exactly_the_contracts_secrets() -> None:
    """The playbook names each vault secret's setting; the names are the contract's, no more, no fewer.

    A secret without a vault key (the API token) is the secrets role's to generate, never a setting.
    """
    plays = yaml.safe_load((ROOT / "playbooks" / "up.yml").read_text())
    (task,) = [t for play in plays for t in play["tasks"] if (t.get("ansible.builtin.import_role") or {}).get("name") == "secrets"]
    # The short way compares the same values with Secrets Manager: one mapping, in the plays' shared vars.
    assert task["vars"]["secrets_values"] == "{{ up__secrets_values }}"
    assert all(play["vars"] is plays[0]["vars"] for play in plays)
    assert list(plays[0]["vars"]["up__secrets_values"]) == [secret.name for secret in contract.SECRETS if secret.vault_key]
    assert [secret.name for secret in contract.SECRETS if not secret.vault_key] == ["api-token"]
