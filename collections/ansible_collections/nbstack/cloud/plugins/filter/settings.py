# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the settings that Jinja cannot express readably (preflight role).

Each check returns sentences that name the setting a person edits and say
what to do; none repeats a value that could be a secret (redact removes the
vault's values from the report as a last guard). Every pattern is matched
against the whole text (re.fullmatch): Python's $ also matches before a final
newline.

Python's ipaddress module is the parser here: ansible.utils' ipaddr filters
would add netaddr as a dependency for a few calls. Documentation: the .yml
file of each filter beside this file.
"""

from __future__ import annotations

import ipaddress
import json
import re
from urllib.parse import urlsplit

from ansible_collections.nbstack.cloud.plugins.module_utils import contract
from ansible_collections.nbstack.cloud.plugins.plugin_utils.network import DOCKER_BRIDGE, PRIVATE_RANGES, VPC_PREFIX_LENGTHS
from ansible_collections.nbstack.cloud.plugins.plugin_utils.template import parameter_value, parameters, refusal

#: A range list is public when its union, in one address family, holds more
#: than this share of the family's addresses (1/16: a /4). No organisation's
#: office or VPN ranges come near it (the largest IPv4 allocations are /8s);
#: 0.0.0.0/1 plus 128.0.0.0/1, or 2000::/3 (every global IPv6 address), do.
PUBLIC_SHARE_PREFIX = 4

#: AWS's default quota of inbound rules per security group, counted for IPv4
#: and IPv6 separately; each range on each listener port is one rule.
INGRESS_RULE_QUOTA = 60

#: Host names the container accepts a plain http:// repository URL on
#: (nbstack_runtime.settings): nothing else crosses a network in clear.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

#: A Docker image tag (also ECR's rule for a tag).
_IMAGE_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
#: A whole number as text; its range is the template's to check.
_WHOLE = re.compile(r"-?[0-9]+")
#: An AWS region name, like eu-west-1 or us-gov-west-1.
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
#: Ansible's spellings of a boolean, as its bool filter reads them.
_BOOLEANS = {"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n", "t", "f"}


def _quoted(value):
    """A value as JSON shows it: a trailing newline or a space stays visible."""
    return json.dumps(value if isinstance(value, (str, int, float, bool, type(None))) else str(value))


def _networks(cidrs):
    for entry in cidrs if isinstance(cidrs, list) else [cidrs]:
        text = str(entry)
        try:
            yield text, ipaddress.ip_network(text, strict=True)
        except ValueError:
            yield text, None


def invalid_cidrs(cidrs):
    """Entries that are not an IPv4/IPv6 network in CIDR notation (host bits zero, nothing around it)."""
    return [
        text
        for text, network in _networks(cidrs)
        if network is None or "/" not in text or text != text.strip() or any(c.isspace() for c in text)
    ]


def public_cidrs(cidrs):
    """Entries that open the server to the internet at large.

    Per address family: an entry whose own range, or the family's entries
    whose union, holds more than 1/16 of the family's addresses (a /4's
    worth). The union counts overlapping entries once, so 0.0.0.0/1 plus
    128.0.0.0/1 is the whole IPv4 internet and is public, as 0.0.0.0/0 is.
    """
    public = []
    for version in (4, 6):
        family = [(text, network) for text, network in _networks(cidrs) if network is not None and network.version == version]
        limit = 2 ** ((32 if version == 4 else 128) - PUBLIC_SHARE_PREFIX)
        alone = [text for text, network in family if network.num_addresses > limit]
        union = sum(n.num_addresses for n in ipaddress.collapse_addresses(network for _text, network in family))
        public += alone or ([text for text, _network in family] if union > limit else [])
    return public


def ingress_rule_problems(cidrs, ports, quota=INGRESS_RULE_QUOTA):
    """Why the load balancer's security group cannot hold one rule per range and port, per family."""
    problems = []
    count = len(ports if isinstance(ports, list) else [ports])
    for version, name in ((4, "IPv4"), (6, "IPv6")):
        ranges = [text for text, network in _networks(cidrs) if network is not None and network.version == version]
        if len(ranges) * count > int(quota):
            problems.append(
                f"notebook_allowed_cidrs: its {len(ranges)} {name} ranges need {len(ranges) * count} inbound rules"
                f" ({count} listener port{'s' if count != 1 else ''} each), more than the {quota} a security group"
                f" holds per address family; merge ranges (at most {int(quota) // count} {name} ranges),"
                " or raise the quota with AWS and pass -e preflight_ingress_rule_quota=N"
            )
    return problems


def unusable_secrets(values, placeholder):
    """Names (never values) of secrets that are missing, empty or still placeholders."""
    return sorted(
        name
        for name, value in values.items()
        if value is None or not str(value).strip() or str(value).startswith(placeholder)
    )


def vpc_cidr_problem(cidr):
    """Why a range cannot be the created VPC's, or "" when it can."""
    text = str(cidr)
    try:
        if text != text.strip():
            raise ValueError(text)
        network = ipaddress.IPv4Network(text, strict=True)
    except ValueError:
        return "it is not an IPv4 network in CIDR notation with its host bits zero (like 10.42.0.0/16)"
    if network.prefixlen not in VPC_PREFIX_LENGTHS:
        return (
            f"its size /{network.prefixlen} is outside /{VPC_PREFIX_LENGTHS[0]} to /{VPC_PREFIX_LENGTHS[-1]}"
            " (the load balancer's subnets need at least /27 each)"
        )
    if not any(network.subnet_of(private) for private in PRIVATE_RANGES):
        return "it is not inside a private range (" + ", ".join(map(str, PRIVATE_RANGES)) + ")"
    if network.overlaps(DOCKER_BRIDGE):
        return f"it overlaps {DOCKER_BRIDGE}, the Docker bridge of every ECS instance"
    return ""


def name_problems(names):
    """Why the prefix, the app name or the region cannot name anything (up, down and status check these).

    ``names`` maps prefix, notebook_app_name and aws_region to their values.
    A prefix that would name a shared stack (contract.RESERVED_PREFIXES) is
    refused too: down.yml deletes the stack <app>-<prefix>.
    """
    problems = []
    prefix, app, region = (names.get(key) for key in ("prefix", "notebook_app_name", "aws_region"))
    if not isinstance(prefix, str) or not re.fullmatch(contract.PREFIX_PATTERN, prefix):
        problems.append(
            f"prefix {_quoted(prefix)} is not usable: it must start with a letter and hold at most 28"
            f" lower-case letters, digits and \"-\" ({contract.PREFIX_PATTERN}), nothing else, not even a newline."
            " Pass one with -e prefix=NAME (the default comes from the local user name)"
        )
    elif contract.reserved_prefix(prefix):
        kind = contract.reserved_prefix(prefix)
        named = "a person's work stack" if kind == "work" else f"a shared {kind} stack"
        problems.append(
            f"prefix {_quoted(prefix)} is not usable: {app}-{prefix} would name {named}"
            f" (a prefix cannot be {' or '.join(contract.RESERVED_PREFIXES)}, or end in"
            f" {' or '.join('-' + kind for kind in contract.RESERVED_PREFIXES)}). Pass another with -e prefix=NAME"
        )
    if not isinstance(app, str) or not re.fullmatch(contract.APP_NAME_PATTERN, app):
        problems.append(
            f"notebook_app_name {_quoted(app)} is not usable: it must start with a letter and hold at most 31"
            " lower-case letters, digits and \"-\". Fix it in group_vars/all/main.yml or with -e notebook_app_name=NAME"
        )
    if not isinstance(region, str) or not _REGION.fullmatch(region):
        problems.append(
            f"aws_region {_quoted(region)} is not an AWS region name (like eu-west-1)."
            " Fix it in group_vars/all/main.yml or with -e aws_region=REGION"
        )
    return problems


def _type_problem(value, wanted):
    """Why a value is not of an argument spec type (int, str, bool, list, dict, path), without showing it.

    None passes, as Ansible's argument spec takes it (the template's constraint decides).
    """
    if value is None:
        return ""
    if wanted == "int":
        whole = isinstance(value, int) and not isinstance(value, bool) or isinstance(value, str) and _WHOLE.fullmatch(value)
        return "" if whole else "it is not a whole number"
    if wanted in ("str", "path"):
        return "" if isinstance(value, (str, int, float)) and not isinstance(value, bool) else "it is not a text"
    if wanted == "bool":
        return "" if isinstance(value, bool) or str(value).lower() in _BOOLEANS else "it is not true or false"
    if wanted == "list":
        return "" if isinstance(value, list) else "it is not a list"
    if wanted == "dict":
        return "" if isinstance(value, dict) else "it is not a group of keys"
    return ""


def settings_groups(options, role_prefix, setting_prefix):
    """The argument spec of the settings groups a role takes whole, under the settings' names.

    Each option of the role named <role_prefix><group> that has suboptions
    is the setting <setting_prefix><group>, required, with the same
    suboptions.
    """
    return {
        setting_prefix + name[len(role_prefix):]: {"type": "dict", "required": True, "options": option["options"]}
        for name, option in options.items()
        if name.startswith(role_prefix) and option.get("options")
    }


def group_problems(groups, template_body, setting_prefix, spec=None):
    """Why a value of a settings group would be refused, naming the setting (never the value).

    With ``spec`` (settings_groups' result), a group must be a mapping with
    exactly its declared keys, each of its declared type and among its
    choices (a key declared int a whole number: the container reads "5439.0"
    as no port at all). Each key of a group <setting_prefix><group> becomes
    the template parameter named after the group and the key
    (contract.group_parameter); its constraints are checked here on the value
    as it would be sent, before anything in AWS is changed.
    """
    declared = parameters(template_body)
    problems = []
    for setting, values in sorted(groups.items()):
        if not isinstance(values, dict):
            problems.append(f"{setting}: it is not a group of keys (with -e, give it whole, as JSON)")
            continue
        group = setting[len(setting_prefix):] if setting.startswith(setting_prefix) else setting
        keys = ((spec or {}).get(setting) or {}).get("options") or {}
        missing = sorted(key for key, option in keys.items() if option.get("required") and key not in values)
        if missing:
            problems.append(f"{setting}: it has no {', '.join(missing)} (a group is given whole)")
        if keys:
            problems += [f"{setting}.{key}: {setting} has no such key" for key in sorted(set(values) - set(keys))]
        for key, value in sorted(values.items()):
            option = keys.get(key) or {}
            reason = _type_problem(value, option.get("type", ""))
            if not reason and option.get("choices") and value not in option["choices"]:
                reason = "it is not one of " + ", ".join(map(str, option["choices"]))
            parameter = contract.group_parameter(group, key)
            if not reason and parameter in declared:
                reason = refusal(declared[parameter], parameter_value(value))
            if reason:
                problems.append(f"{setting}.{key}: {reason}")
    return problems


def parameter_problems(sent, templates):
    """Why CloudFormation would refuse a value the playbook will send, naming the setting it comes from.

    ``sent`` lists what a setting becomes: dicts with ``setting``,
    ``template`` (a key of ``templates``), ``parameter`` and ``value``, and
    optionally ``whole`` (the container reads the value as a whole number)
    and ``fix`` (how to give another value, when group_vars is not the place).
    ``templates`` maps a template's name to its body. A list value is checked
    item by item against the parameter's pattern (List<...> parameters).
    """
    bodies = {name: parameters(body) for name, body in templates.items()}
    problems = []
    for item in sent:
        spec = bodies.get(item["template"], {}).get(item["parameter"])
        value = item.get("value")
        if spec is None:
            continue
        if item.get("whole") and _type_problem(value, "int"):
            reason = "it is not a whole number"
        elif isinstance(value, list) and str(spec.get("Type", "")).startswith("List<"):
            reason = next((r for r in (refusal(spec, parameter_value(v)) for v in value) if r), "")
        else:
            reason = refusal(spec, parameter_value(value))
        if reason:
            problems.append(f"{item['setting']}: {reason}" + (f"; {item['fix']}" if item.get("fix") else ""))
    return problems


def repo_url_problem(url):
    """Why the container would refuse the repository URL, or "" when it takes it.

    An https URL without credentials in it (the token comes from the vault);
    plain http only on a loopback host, as the container accepts it.
    """
    if not isinstance(url, str) or not url or any(c.isspace() for c in url):
        return "it must be the https URL of the team's notebook repository, on one line without spaces"
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "it is not a URL"
    if parts.scheme != "https" and not (parts.scheme == "http" and host in LOOPBACK_HOSTS):
        return "it must be an https:// URL (the container accepts plain http:// only on this machine's loopback)"
    if not host:
        return "it names no host"
    if "@" in parts.netloc:
        return "it must not hold credentials (the token comes from vault_github_token)"
    return ""


def image_tag_problem(tag):
    """Why a text cannot be a Docker/ECR image tag, or "" when it can (empty: the checkout's tag)."""
    if tag in ("", None) or isinstance(tag, str) and _IMAGE_TAG.fullmatch(tag):
        return ""
    return "it must be an image tag: a letter, digit or _, then up to 127 letters, digits, _ . or -"


def _secret_texts(values):
    if isinstance(values, dict):
        values = list(values.values())
    if isinstance(values, (list, tuple)):
        for value in values:
            yield from _secret_texts(value)
    elif values is not None and not isinstance(values, bool) and str(values).strip():
        yield str(values)


def redact(problems, secrets):
    """The problems with every secret value (and its JSON-escaped form) replaced by ********.

    ``secrets`` is the vault's values, in any nesting of lists and dicts;
    the longest are replaced first.
    """
    texts = sorted(set(_secret_texts(secrets)), key=len, reverse=True)
    redacted = []
    for problem in problems:
        line = str(problem)
        for text in texts:
            for form in (text, json.dumps(text)[1:-1]):
                line = line.replace(form, "********")
        redacted.append(line)
    return redacted


class FilterModule:
    """Checks of the settings."""

    def filters(self):
        return {
            "invalid_cidrs": invalid_cidrs,
            "public_cidrs": public_cidrs,
            "ingress_rule_problems": ingress_rule_problems,
            "unusable_secrets": unusable_secrets,
            "vpc_cidr_problem": vpc_cidr_problem,
            "name_problems": name_problems,
            "settings_groups": settings_groups,
            "group_problems": group_problems,
            "parameter_problems": parameter_problems,
            "repo_url_problem": repo_url_problem,
            "image_tag_problem": image_tag_problem,
            "redact": redact,
        }
