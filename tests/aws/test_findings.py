"""What the emulator cannot show, on a real account: one scenario per finding of the real-account review.

Each test is a person's scenario with the README's commands, asserted on what
AWS then holds (stacks, the auto scaling group, ECS tasks and their hosts,
target health, the bucket) and on key words of the output, not on exact
messages. The tests run in this file's order, which is also the cheapest
order (the shared stacks are made once; the bucket case, which removes them,
comes last), and each sets up what it needs, so any one runs alone:
`make test-aws K=two_prefixes`.

People: `first` (a deploy without a pushed image), `gpu` (refused by
preflight), `alice` (a long-running server), `ann` and `ben` (started
together; ben stops for idleness and is started again).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sandbox import Team, missing_requirements, poll

SKIP, LACKING = missing_requirements()
if SKIP:
    pytest.skip(SKIP, allow_module_level=True)
if LACKING:
    pytest.fail(LACKING, pytrace=False)

MINUTE = 60.0
#: A failure the circuit breaker and the image check catch: from the last phase's start to the run's end.
FAILURE_BOUND = 6 * MINUTE
#: A server start on a fresh instance: boot, register, pull the image, pass the health checks.
START_BOUND = 25 * MINUTE
#: The target turns healthy after up.yml ends (health check interval and threshold).
HEALTHY_BOUND = 10 * MINUTE
#: A stack that is left in progress this long after a run is stuck.
SETTLE_BOUND = 5 * MINUTE


def idle(minutes: int) -> str:
    return json.dumps({"notebook_idle": {"timeout_minutes": minutes, "max_lifetime_hours": 0}})


#: Each person's own settings, given the same way on every run (a different value is a change).
NEVER_IDLE = idle(0)
#: ben stops for idleness a few minutes after each start; short enough to wait for, long enough to look first.
BEN_IDLE = idle(5)
G_QUOTA_CODE = "L-DB2E81BA"  # Service Quotas, ec2: Running On-Demand G and VT instances (vCPUs)


def serving(team: Team, prefix: str, *extra: str) -> None:
    """up.yml for `prefix` succeeded and its Jupyter answers through the load balancer."""
    run = team.up(prefix, *extra, timeout=START_BOUND)
    assert run.returncode == 0, f"up.yml -e prefix={prefix} failed:\n{run.tail(60)}"
    poll(lambda: team.healthy(prefix) and team.answers(prefix), HEALTHY_BOUND, f"{prefix}'s server to answer through the load balancer")


def settled(team: Team) -> None:
    """No stack of the team stays in an *_IN_PROGRESS state."""
    try:
        poll(lambda: not team.stacks_in_progress(), SETTLE_BOUND, "the team's stacks to settle")
    except TimeoutError:
        pytest.fail(f"stacks still in progress {SETTLE_BOUND / 60:.0f} min after the run: {', '.join(team.stacks_in_progress())}")


def status_rows(output: str) -> dict[str, list[str]]:
    """status.yml's table rows by prefix, split on runs of two or more spaces."""
    found = {}
    for line in output.splitlines():
        # The callback prints the list as YAML or JSON: drop "- ", quotes, commas.
        cells = re.split(r"\s{2,}", re.sub(r"^[-\s]*[\"']?|[\"']?,?$", "", line.strip()))
        if len(cells) >= 2 and cells[1] in ("running", "stopped", "absent", "failed", "changing"):
            found[cells[0]] = cells
    return found


def running_task(team: Team, prefix: str) -> dict[str, Any]:
    (task,) = [t for t in team.tasks(prefix) if t["lastStatus"] == "RUNNING"]
    return task


# --------------------------------------------- a first deploy before image.yml
def test_first_deploy_without_a_pushed_image_fails_in_minutes_naming_image_yml(team: Team) -> None:
    missing = f"nbt-missing-{secrets.token_hex(4)}"
    run = team.up("first", "-e", f"notebook_image_tag={missing}", "-e", NEVER_IDLE, timeout=45 * MINUTE)

    assert run.returncode != 0, f"up.yml with an image tag that is in no repository succeeded:\n{run.tail()}"
    assert "image.yml" in run.text, f"the failure does not say to run image.yml:\n{run.tail()}"
    assert run.since_last_phase() < FAILURE_BOUND, (
        f"up.yml failed {run.since_last_phase() / 60:.1f} min after its last phase ({run.phases_started()[-1:]}) started"
    )
    settled(team)
    person = team.stack(team.stack_name("first"))
    assert person is None or not person["StackStatus"].endswith("_IN_PROGRESS")


# -------------------------------------------------------------- instance types
def test_a_g_family_type_without_g_quota_is_refused_by_preflight_before_any_change(team: Team) -> None:
    quota = team.aws.service_quotas.get_service_quota(ServiceCode="ec2", QuotaCode=G_QUOTA_CODE)["Quota"]["Value"]
    if quota > 0:
        pytest.skip(f"the account's on-demand G and VT vCPU quota is {quota:.0f}: this case needs an account where it is 0")
    before = {s["StackName"]: (s["StackStatus"], s.get("LastUpdatedTime")) for s in team.live_stacks()}

    run = team.up("gpu", "-e", "notebook_instance_type=g4dn.xlarge", "-e", NEVER_IDLE)

    assert run.returncode != 0, f"up.yml with a G type and no G quota succeeded:\n{run.tail()}"
    assert "quota" in run.text.lower() and "g4dn" in run.text, f"the refusal names neither the quota nor the type:\n{run.tail()}"
    assert run.phases_started() == ["preflight"], f"phases past preflight started: {run.phases_started()}"
    assert team.stack(team.stack_name("gpu")) is None
    after = {s["StackName"]: (s["StackStatus"], s.get("LastUpdatedTime")) for s in team.live_stacks()}
    assert after == before
    secrets_made = team.aws.secretsmanager.list_secrets(Filters=[{"Key": "name", "Values": [f"{team.app}/gpu/"]}])["SecretList"]
    assert secrets_made == []


# ------------------------------------------------------------------ newer AMIs
def test_a_no_op_up_on_a_running_server_keeps_its_instance_and_task(team: Team, pushed_image: str) -> None:
    serving(team, "alice", "-e", NEVER_IDLE)
    instances, task = team.in_service_instances("alice"), running_task(team, "alice")["taskArn"]
    assert len(instances) == 1

    again = team.up("alice", "-e", NEVER_IDLE)

    assert again.returncode == 0, again.tail()
    assert again.changed == 0, f"a run with nothing to do changed {again.changed} things:\n{again.tail()}"
    assert team.in_service_instances("alice") == instances
    assert running_task(team, "alice")["taskArn"] == task
    assert team.healthy("alice")


# ---------------------------------------------------------------------- models
def test_a_model_saved_and_loaded_from_a_notebook_is_a_version_in_the_bucket(team: Team, pushed_image: str) -> None:
    import nbformat
    from jupyter_server.gateway.gateway_client import GatewayClient
    from jupyter_server.gateway.managers import GatewayKernelManager
    from nbclient import NotebookClient

    from nbstack_devkit.token_kernel import TokenGatewayKernelClient

    serving(team, "alice", "-e", NEVER_IDLE)
    nonce = secrets.token_hex(8)
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "from nbstack_runtime.models import save_model, load_model\n"
                f"model = {{'weights': [1, 2, 3], 'nonce': '{nonce}'}}\n"
                "version = save_model(model, 'aws-suite')\n"
                "print('version', version)"
            ),
            nbformat.v4.new_code_cell("loaded = load_model('aws-suite', version=version)\nprint('loaded', loaded == model, loaded['nonce'])"),
            # A missing object: S3 answers the task role (which may list only
            # with an s3:prefix) 403 or 404; either way it reads as missing.
            nbformat.v4.new_code_cell(
                "import boto3, botocore\n"
                "from nbstack_runtime import models\n"
                "try:\n"
                f"    load_model('missing-{nonce}')\n"
                "except models.ModelNotFoundError:\n"
                "    print('missing reads as missing')\n"
                "try:\n"
                f"    boto3.client('s3').get_object(Bucket=models._bucket(None), Key='models/alice/missing-{nonce}')\n"
                "except botocore.exceptions.ClientError as error:\n"
                "    print('S3 answered', error.response['Error']['Code'])"
            ),
        ]
    )
    GatewayClient.clear_instance()
    gateway = GatewayClient.instance(
        url=team.notebook_url("alice").rstrip("/"), auth_token=team.api_token("alice"), request_timeout=120.0, connect_timeout=60.0
    )
    gateway.init_connection_args()
    try:
        manager = GatewayKernelManager(kernel_name="python3", client_factory=TokenGatewayKernelClient)
        client = NotebookClient(nb, km=manager, kernel_name="python3", timeout=300, startup_timeout=180)
        executed = asyncio.run(client.async_execute(cleanup_kc=True))
    finally:
        GatewayClient.clear_instance()

    printed = "".join(o.get("text", "") for cell in executed.cells for o in cell.outputs if o["output_type"] == "stream")
    assert f"loaded True {nonce}" in printed, printed
    assert "missing reads as missing" in printed, printed
    print("a missing object, as S3 answers the task role:", printed.split("S3 answered ", 1)[-1].split()[0])
    version = printed.split("version ", 1)[1].split()[0]
    bucket = team.outputs(f"{team.app}-persistent")["ModelBucketName"]
    head = team.aws.s3.head_object(Bucket=bucket, Key="models/alice/aws-suite", VersionId=version)
    assert head["Metadata"].get("nbstack-writer") == "alice"
    assert team.aws.s3.get_bucket_versioning(Bucket=bucket).get("Status") == "Enabled"


# ------------------------------------------------------------------ work volume
def test_files_in_the_work_directory_outlive_down_and_up_on_the_efs_volume(team: Team, pushed_image: str) -> None:
    """The task mounts the person's EFS access point (TLS, the task role's IAM authorization) and finds it again.

    What the emulator cannot show: ECS mounting an EFS volume with IAM
    authorization through the access point, as the notebook user, and the
    same files after the instance and the task are gone. Also measured: how
    long the work stack's creation took (the mount targets).
    """
    import requests

    serving(team, "alice", "-e", NEVER_IDLE)
    work = team.stack(f"{team.app}-alice-work")
    assert work is not None and work["StackStatus"].endswith("_COMPLETE")
    nonce = secrets.token_hex(8)
    url = team.notebook_url("alice").rstrip("/")
    headers = {"Authorization": f"token {team.api_token('alice')}"}
    body = {"type": "file", "format": "text", "content": f"kept {nonce}\n"}
    put = requests.put(f"{url}/api/contents/aws-suite-kept.txt", json=body, headers=headers, timeout=60)
    assert put.status_code in (200, 201), put.text

    assert team.down("alice").returncode == 0
    assert team.stack(f"{team.app}-alice-work") is not None
    serving(team, "alice", "-e", NEVER_IDLE)

    got = requests.get(f"{url}/api/contents/aws-suite-kept.txt", params={"content": "1"}, headers=headers, timeout=60)
    assert got.status_code == 200 and got.json()["content"] == f"kept {nonce}\n", got.text
    file_system = team.outputs(f"{team.app}-alice-work")["FileSystemId"]
    (described,) = team.aws.efs.describe_file_systems(FileSystemId=file_system)["FileSystems"]
    assert described["Encrypted"] is True
    requests.delete(f"{url}/api/contents/aws-suite-kept.txt", headers=headers, timeout=60)


def test_a_private_subnet_swapped_in_its_zone_moves_the_mount_target_once_the_server_is_down(team: Team, pushed_image: str) -> None:
    """The private subnets swapped for one new subnet in the zone of one of them: refused while alice's server is
    up; after down.yml, the work stack deletes the old mount targets, then makes the new one in that zone, and the
    server, which can only be placed in the new subnet, finds her files.

    What the emulator cannot show: CloudFormation removing and adding a
    conditional mount target in a stack update (moto answers 500), EFS
    refusing a second mount target in one zone (MountTargetConflict, which
    the drops-first update and the wait for the deletions avoid). Swapped
    back at the end, through the same two updates.
    """
    import ipaddress

    import requests

    serving(team, "alice", "-e", NEVER_IDLE)
    network = team.outputs(f"{team.app}-network")
    vpc, public, private = network["VpcId"], network["PublicSubnetIds"].split(","), network["PrivateSubnetIds"].split(",")
    ec2 = team.aws.ec2

    def mount_targets() -> dict[str, str]:
        file_system = team.outputs(f"{team.app}-alice-work")["FileSystemId"]
        described = team.aws.efs.describe_mount_targets(FileSystemId=file_system)["MountTargets"]
        return {t["AvailabilityZoneName"]: t["SubnetId"] for t in described}

    before = mount_targets()
    (swapped,) = ec2.describe_subnets(SubnetIds=[private[-1]])["Subnets"]
    zone = swapped["AvailabilityZone"]
    url = team.notebook_url("alice").rstrip("/")
    headers = {"Authorization": f"token {team.api_token('alice')}"}
    nonce = secrets.token_hex(8)
    body = {"type": "file", "format": "text", "content": f"kept {nonce}\n"}
    assert requests.put(f"{url}/api/contents/aws-suite-swap.txt", json=body, headers=headers, timeout=60).status_code in (200, 201)
    new = ""
    try:
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]
        used = [ipaddress.ip_network(subnet["CidrBlock"]) for subnet in subnets]
        (vpc_range,) = [ipaddress.ip_network(v["CidrBlock"]) for v in ec2.describe_vpcs(VpcIds=[vpc])["Vpcs"]]
        free = next(c for c in vpc_range.subnets(new_prefix=24) if not any(c.overlaps(u) for u in used))
        tags = [{"ResourceType": "subnet", "Tags": [{"Key": "nbstack:app", "Value": team.app}]}]
        new = ec2.create_subnet(VpcId=vpc, CidrBlock=str(free), AvailabilityZone=zone, TagSpecifications=tags)["Subnet"]["SubnetId"]
        (table,) = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [swapped["SubnetId"]]}])["RouteTables"]
        ec2.associate_route_table(RouteTableId=table["RouteTableId"], SubnetId=new)  # the NAT route, as the old one has
        given = json.dumps({"notebook_vpc_id": vpc, "notebook_public_subnet_ids": public, "notebook_private_subnet_ids": [new]})

        refused = team.up("alice", "-e", NEVER_IDLE, "-e", given, "-e", "team_update=true")
        assert refused.returncode != 0 and "Run down.yml -e prefix=alice first" in refused.text, refused.tail(40)
        assert mount_targets() == before

        assert team.down("alice").returncode == 0
        serving(team, "alice", "-e", NEVER_IDLE, "-e", given, "-e", "team_update=true")
        assert mount_targets() == {zone: new}
        assert team.host_of("alice", running_task(team, "alice"))["SubnetId"] == new
        got = requests.get(f"{url}/api/contents/aws-suite-swap.txt", params={"content": "1"}, headers=headers, timeout=60)
        assert got.status_code == 200 and got.json()["content"] == f"kept {nonce}\n", got.text
        requests.delete(f"{url}/api/contents/aws-suite-swap.txt", headers=headers, timeout=60)
    finally:
        # Back to the network stack's subnets (down first, as the refusal says): the later tests expect them.
        team.down("alice")
        back = team.up("alice", "-e", NEVER_IDLE, "-e", "team_update=true", timeout=START_BOUND)
        if back.returncode != 0:
            pytest.fail(
                f"the swap back to the network stack's subnets failed, so every later up.yml is refused as a team-wide"
                f" change: run up.yml -e prefix=alice -e team_update=true, then delete subnet {new or '(none made)'}:\n"
                f"{back.tail(60)}"
            )

        def deleted() -> bool:
            try:
                ec2.delete_subnet(SubnetId=new)
            except ec2.exceptions.ClientError as error:  # DependencyViolation while an interface is still there
                if "DependencyViolation" not in str(error):
                    raise
                return False
            return True

        if new:
            poll(deleted, 10 * MINUTE, f"the swapped-in subnet {new} to be free to delete")
    assert mount_targets() == before
    settled(team)


# ------------------------------------------------------------------- placement
def test_two_prefixes_started_together_each_land_on_their_own_instance_and_one_idle_stop_leaves_the_other(team: Team, pushed_image: str) -> None:
    if team.stack(f"{team.app}-persistent") is None or team.stack(f"{team.app}-network") is None:
        # In a team the shared stacks are there before two people start together: an earlier person made them.
        serving(team, "alice", "-e", NEVER_IDLE)
    people = {"ann": NEVER_IDLE, "ben": BEN_IDLE}

    def start_and_look(prefix: str) -> dict[str, Any]:
        serving(team, prefix, "-e", people[prefix])
        task = running_task(team, prefix)
        return {"task": task["taskArn"], "host": team.host_of(prefix, task)}

    with ThreadPoolExecutor(max_workers=2) as pool:
        placed = dict(zip(people, pool.map(start_and_look, people), strict=True))

    for prefix, where in placed.items():
        assert where["host"]["Tags"].get("nbstack:prefix") == prefix, f"{prefix}'s task runs on {where['host']['InstanceId']}, tagged {where['host']['Tags']}"
    assert placed["ann"]["host"]["InstanceId"] != placed["ben"]["host"]["InstanceId"]

    poll(lambda: team.stopped("ben"), 20 * MINUTE, "ben's idle stop")

    task = running_task(team, "ann")
    assert task["taskArn"] == placed["ann"]["task"]
    assert team.host_of("ann", task)["State"]["Name"] == "running"
    assert team.group("ann")["DesiredCapacity"] == 1
    assert team.healthy("ann") and team.answers("ann")
    status = team.status()
    assert status.returncode == 0, status.tail()
    assert {prefix: cells[1] for prefix, cells in status_rows(status.output).items() if prefix in people} == {"ann": "running", "ben": "stopped"}


# -------------------------------------------------- restart after an idle stop
def test_up_after_an_idle_stop_with_a_changed_setting_starts_the_server(team: Team, pushed_image: str) -> None:
    if team.stack(team.stack_name("ben")) is None or not team.stopped("ben"):
        serving(team, "ben", "-e", BEN_IDLE)
        poll(lambda: team.stopped("ben"), 20 * MINUTE, "ben's idle stop")
    assert "nbstack:stopped-at" in {t["key"] for t in team.service("ben").get("tags", [])}

    run = team.up("ben", "-e", idle(30), timeout=START_BOUND)

    assert run.returncode == 0, f"up.yml after an idle stop, with a changed idle timeout, did not start the server:\n{run.tail(60)}"
    poll(lambda: team.healthy("ben") and team.answers("ben"), HEALTHY_BOUND, "ben's server to answer")
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in team.stack(team.stack_name("ben"))["Parameters"]}  # type: ignore[index]
    assert parameters.get("IdleTimeoutMinutes") == "30"
    service = team.service("ben")
    assert service["runningCount"] == 1 and running_task(team, "ben")["taskDefinitionArn"] == service["taskDefinition"]
    assert team.group("ben")["DesiredCapacity"] == 1
    assert "nbstack:stopped-at" not in {t["key"] for t in service.get("tags", [])}
    settled(team)


# --------------------------------------- team-wide settings while stacks exist
DOMAIN = os.environ.get("NBSTACK_TEST_DOMAIN", "")
ZONE = os.environ.get("NBSTACK_TEST_HOSTED_ZONE_ID", "")


@pytest.mark.skipif(not (DOMAIN and ZONE), reason="needs NBSTACK_TEST_DOMAIN and NBSTACK_TEST_HOSTED_ZONE_ID (a name in a public hosted zone of the account)")
def test_a_certificate_set_while_an_instance_stack_exists_is_applied(team: Team, pushed_image: str) -> None:
    serving(team, "alice", "-e", NEVER_IDLE)
    listener = team.outputs(f"{team.app}-persistent")["ListenerArn"]

    # The team's settings file gets the domain, as a team edits group_vars/all/main.yml.
    team.write_settings(notebook_domain=DOMAIN, notebook_hosted_zone_id=ZONE, notebook_allow_plain_http=False)
    run = team.up("alice", "-e", NEVER_IDLE, "-e", "team_update=true", timeout=START_BOUND)

    assert run.returncode == 0, f"setting a domain while alice's stack exists failed:\n{run.tail(60)}"
    assert team.outputs(f"{team.app}-persistent")["ListenerArn"] == listener
    (found,) = team.aws.elbv2.describe_listeners(ListenerArns=[listener])["Listeners"]
    assert (found["Protocol"], found["Port"]) == ("HTTPS", 443)
    certificate = team.aws.acm.describe_certificate(CertificateArn=found["Certificates"][0]["CertificateArn"])["Certificate"]
    assert certificate["Status"] == "ISSUED" and certificate["DomainName"] == DOMAIN
    assert team.notebook_url("alice").startswith(f"https://{DOMAIN}/")
    poll(lambda: team.answers("alice"), HEALTHY_BOUND, f"alice's server to answer at https://{DOMAIN}/alice/")
    settled(team)


# ------------------------------------------------------------ the model bucket
def test_persistent_absent_then_up_keeps_the_same_model_bucket_and_its_objects(team: Team, pushed_image: str) -> None:
    serving(team, "alice", "-e", NEVER_IDLE)
    bucket = team.outputs(f"{team.app}-persistent")["ModelBucketName"]
    body = secrets.token_hex(16).encode()
    team.aws.s3.put_object(Bucket=bucket, Key="models/alice/kept-across-teardown", Body=body)

    for summary in team.live_stacks():
        prefix = summary["StackName"].removeprefix(team.app + "-")
        if prefix not in ("network", "persistent") and not prefix.endswith("-work"):
            assert team.down(prefix, "-e", "purge_work=true").returncode == 0
    gone = team.run("down.yml", "-e", "persistent=absent", prefix="alice")

    assert gone.returncode == 0, gone.tail(60)
    assert team.stack(f"{team.app}-persistent") is None
    assert team.aws.s3.get_object(Bucket=bucket, Key="models/alice/kept-across-teardown")["Body"].read() == body

    # The ECR repository went with the persistent stack: the README's order, image.yml first.
    assert team.image().returncode == 0
    serving(team, "alice", "-e", NEVER_IDLE)

    assert team.outputs(f"{team.app}-persistent")["ModelBucketName"] == bucket
    assert team.aws.s3.get_object(Bucket=bucket, Key="models/alice/kept-across-teardown")["Body"].read() == body
