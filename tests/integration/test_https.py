"""HTTPS at the team's domain, and plain HTTP only when asked for.

The scenario: a Route 53 public zone and an issued ACM certificate exist in
the account (the emulator does not create an ACM certificate from a template,
so the run adopts one, as `notebook_certificate_arn` allows); alice's server
is brought up over plain HTTP first, as the integration settings ask, then
the team sets its domain while her stack exists. What the emulator ignores
(the certificate the stack would request and its DNS validation) is asserted
on the template in tests/unit/test_templates.py.

Then the settings preflight refuses, each before anything in the account
changes.
"""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from team import APP

from nbstack_devkit.emulator import Clients, Emulator
from nbstack_devkit.playbooks import PlaybookRun, Playbooks, ok

PREFIX = "alice"
DOMAIN = "notebooks.example.com"
ZONE = "example.com"
PLAIN_WARNING = "WARNING: plain HTTP"


def self_signed(*names: str) -> tuple[bytes, bytes]:
    """A certificate and its key, PEM, for these names (the first is the subject)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), pem_key


def prepare_account(aws: Clients, *names: str) -> dict[str, str]:
    """The team's hosted zone and an issued certificate for `names` (default: the domain)."""
    zone = aws.route53.create_hosted_zone(Name=ZONE, CallerReference=f"nbstack-{ZONE}")["HostedZone"]
    certificate, key = self_signed(*(names or (DOMAIN,)))
    arn = aws.acm.import_certificate(Certificate=certificate, PrivateKey=key)["CertificateArn"]
    return {"zone_id": zone["Id"].rsplit("/", 1)[-1], "certificate_arn": arn}


def https_settings(account: dict[str, str], **overrides: Any) -> list[str]:
    settings = {
        "notebook_domain": DOMAIN,
        "notebook_hosted_zone_id": account["zone_id"],
        "notebook_certificate_arn": account["certificate_arn"],
        "notebook_allow_plain_http": False,
        **overrides,
    }
    return ["-e", json.dumps(settings)]


def outputs(aws: Clients, stack: str) -> dict[str, str]:
    (found,) = aws.cloudformation.describe_stacks(StackName=stack)["Stacks"]
    return {item["OutputKey"]: item["OutputValue"] for item in found.get("Outputs", [])}


@pytest.fixture(scope="module")
def scenario(emulator: Emulator, playbooks: Playbooks, aws: Clients) -> dict[str, Any]:
    emulator.reset()
    account = prepare_account(aws)
    # First as the integration settings ask: no domain, plain HTTP allowed.
    plain = ok(playbooks.up(PREFIX))
    plain_listener = outputs(aws, f"{APP}-persistent")["ListenerArn"]
    # Then the team sets its domain while alice's stack exists (a team-wide change, said so).
    https = ok(playbooks.up(PREFIX, *https_settings(account), "-e", "team_update=true"))
    again = ok(playbooks.up(PREFIX, *https_settings(account)))
    status = ok(playbooks.run("status.yml", "-e", f"prefix={PREFIX}", *https_settings(account), with_vault=False))
    # The integration settings: no domain, plain HTTP allowed.
    plain_status = ok(playbooks.run("status.yml", "-e", f"prefix={PREFIX}", with_vault=False))
    return {
        **account,
        "plain": plain,
        "plain_listener": plain_listener,
        "https": https,
        "again": again,
        "status": status,
        "plain_status": plain_status,
        "persistent": outputs(aws, f"{APP}-persistent"),
        "instance": outputs(aws, f"{APP}-{PREFIX}"),
    }


def test_plain_http_is_said_and_https_is_not(scenario: dict[str, Any]) -> None:
    for run in (scenario["plain"], scenario["plain_status"]):
        assert PLAIN_WARNING in run.text
        assert "cross the network in clear" in run.text
    for run in (scenario["https"], scenario["again"], scenario["status"]):
        assert PLAIN_WARNING not in run.text


def test_a_second_run_changes_nothing(scenario: dict[str, Any]) -> None:
    assert scenario["again"].changed == 0, scenario["again"].tail(60)


def test_the_printed_url_is_https_at_the_domain(scenario: dict[str, Any]) -> None:
    url = f"https://{DOMAIN}/{PREFIX}/"
    assert scenario["persistent"]["NotebookUrlBase"] == f"https://{DOMAIN}"
    assert scenario["instance"]["NotebookUrl"] == url
    assert f"Notebook: {url}" in scenario["https"].text
    assert url in scenario["status"].text


def test_the_domain_is_an_alias_of_the_load_balancer(scenario: dict[str, Any], aws: Clients) -> None:
    records = aws.route53.list_resource_record_sets(HostedZoneId=scenario["zone_id"])["ResourceRecordSets"]
    (record,) = [r for r in records if r["Name"].rstrip(".") == DOMAIN]
    assert record["Type"] == "A"
    (balancer,) = aws.elbv2.describe_load_balancers()["LoadBalancers"]
    assert record["AliasTarget"]["DNSName"].rstrip(".") == balancer["DNSName"].rstrip(".")
    # The alias's hosted zone (the load balancer's canonical zone) is a GetAtt the
    # emulator does not implement; tests/unit/test_templates.py asserts it.


def test_the_listener_turned_https_in_place_and_http_only_redirects(scenario: dict[str, Any], aws: Clients) -> None:
    arn = scenario["persistent"]["ListenerArn"]
    assert arn == scenario["plain_listener"], "the listener's ARN changed: instance stacks import it"
    (balancer,) = aws.elbv2.describe_load_balancers()["LoadBalancers"]
    listeners = {listener["ListenerArn"]: listener for listener in
                 aws.elbv2.describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]}
    https = listeners.pop(arn)
    assert (https["Protocol"], https["Port"]) == ("HTTPS", 443)
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert [c["CertificateArn"] for c in https["Certificates"]] == [scenario["certificate_arn"]]
    (redirect,) = listeners.values()
    assert (redirect["Protocol"], redirect["Port"]) == ("HTTP", 80)
    (action,) = redirect["DefaultActions"]
    assert action["Type"] == "redirect" and action["RedirectConfig"]["Protocol"] == "HTTPS"
    assert action["RedirectConfig"]["Port"] == "443"
    # alice's path rule is still on the listener, and still routes to her target group.
    rules = [rule for rule in aws.elbv2.describe_rules(ListenerArn=arn)["Rules"] if not rule["IsDefault"]]
    assert [rule["Actions"][0]["TargetGroupArn"] for rule in rules] == [scenario["instance"]["TargetGroupArn"]]


def test_the_load_balancer_admits_https_and_the_redirect_only(scenario: dict[str, Any], aws: Clients) -> None:
    group_id = scenario["persistent"]["AlbSecurityGroupId"]
    (group,) = aws.ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
    assert {(p["FromPort"], p["ToPort"]) for p in group["IpPermissions"]} == {(443, 443), (80, 80)}
    assert all(p["IpProtocol"] == "tcp" for p in group["IpPermissions"])


# ---------------------------------------------------------------- refusals


@pytest.fixture
def account(emulator: Emulator, aws: Clients) -> dict[str, str]:
    emulator.reset()
    return prepare_account(aws)


def refused(run: PlaybookRun, aws: Clients) -> str:
    """The run's text, once it is known that it failed and changed nothing in the account."""
    assert run.returncode != 0, run.tail()
    assert aws.cloudformation.describe_stacks()["Stacks"] == []
    assert aws.secretsmanager.list_secrets()["SecretList"] == []
    assert aws.elbv2.describe_load_balancers()["LoadBalancers"] == []
    return run.text


def test_no_domain_and_no_plain_http_is_refused(account: dict[str, str], playbooks: Playbooks, aws: Clients) -> None:
    text = refused(playbooks.up(PREFIX, "-e", '{"notebook_allow_plain_http": false}'), aws)
    assert "notebook_domain is empty and notebook_allow_plain_http is false" in text
    for setting in ("notebook_domain", "notebook_hosted_zone_id", "notebook_certificate_arn",
                    "notebook_allow_plain_http: true"):
        assert setting in text
    assert "cross the network in clear" in text


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"notebook_domain": "Notebooks.Example.com"}, 'notebook_domain "Notebooks.Example.com" is not a domain name'),
        ({"notebook_domain": "notebooks.example.com."}, "without a trailing dot"),
        ({"notebook_domain": "notebooks.example.com\n"}, "is not a domain name"),
        ({"notebook_domain": "*.example.com"}, "or a wildcard"),
        ({"notebook_domain": "notebooks"}, 'notebook_domain "notebooks" is not a domain name'),
        ({"notebook_hosted_zone_id": "/hostedzone/Z0123"}, 'without "/hostedzone/"'),
        ({"notebook_hosted_zone_id": "ZNOSUCHZONE0123"}, "notebook_hosted_zone_id ZNOSUCHZONE0123 cannot be read"),
        ({"notebook_domain": "notebooks.example.org"}, "holds example.com, not notebooks.example.org"),
        ({"notebook_hosted_zone_id": "", "notebook_certificate_arn": ""},
         'notebook_domain "notebooks.example.com" has neither notebook_hosted_zone_id nor notebook_certificate_arn'),
        ({"notebook_domain": "", "notebook_allow_plain_http": True},
         "notebook_domain is empty, but notebook_certificate_arn and notebook_hosted_zone_id only serve a domain"),
    ],
    ids=[
        "upper-case-domain",
        "trailing-dot",
        "trailing-newline",
        "wildcard",
        "one-label",
        "zone-with-path",
        "zone-not-found",
        "zone-of-another-domain",
        "domain-without-zone-or-certificate",
        "certificate-without-domain",
    ],
)
def test_bad_https_settings_are_refused(
    account: dict[str, str], playbooks: Playbooks, aws: Clients, overrides: dict[str, Any], expected: str
) -> None:
    text = refused(playbooks.up(PREFIX, *https_settings(account, **overrides)), aws)
    assert expected in text
    assert "nothing in AWS was changed. Fix each setting named below in group_vars/all/main.yml" in text


def test_a_certificate_for_another_name_is_refused(
    emulator: Emulator, playbooks: Playbooks, aws: Clients
) -> None:
    emulator.reset()
    account = prepare_account(aws, "other.example.com")
    text = refused(playbooks.up(PREFIX, *https_settings(account)), aws)
    assert f"notebook_certificate_arn covers other.example.com, not {DOMAIN}" in text


def test_every_https_problem_is_reported_at_once(account: dict[str, str], playbooks: Playbooks, aws: Clients) -> None:
    overrides = {"notebook_domain": "bad_name.example.com", "notebook_hosted_zone_id": "zlower"}
    text = refused(playbooks.up(PREFIX, *https_settings(account, **overrides)), aws)
    assert 'notebook_domain "bad_name.example.com" is not a domain name' in text
    assert 'notebook_hosted_zone_id "zlower" is not a Route 53 hosted zone ID' in text
