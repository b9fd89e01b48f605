"""A throwaway team in a real AWS account, for `make test-aws`: its settings, its playbook runs, its teardown and its bill.

The team gets an app name nobody else uses (`nbt-<random>`), so that every
stack, bucket, repository, log group and secret it makes is recognisable by
name or by its `nbstack:app` tag. The playbooks run as a person runs them
(the README's commands, as subprocesses, from the checkout, with the
account the environment names: AWS_PROFILE), each with its own log file.

Teardown is what a team would do (down.yml for each person, then
down.yml -e persistent=absent), then a sweep of anything of the app's
that is still there: stacks (termination protection off), instances, the
retained model bucket (every version), the ECR repository, log groups and
secrets. The sweep also runs on its own:

    .venv/bin/python tests/aws/sandbox.py sweep nbt-1a2b3c [region]

Everything here talks to whatever boto3's environment names, so the same
code runs against the local emulator (AWS_ENDPOINT_URL) for a dry run of
the harness itself.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any, TypeVar

import boto3
import yaml
from botocore.exceptions import ClientError

from nbstack_devkit.costs import InstanceUse, StackUse, estimate, load_prices, report
from nbstack_devkit.paths import BIN, ROOT
from nbstack_devkit.playbooks import PlaybookRun
from nbstack_devkit.vault import PersonVaults
from nbstack_devkit.waits import wait_until

T = TypeVar("T")

APP_TAG = "nbstack:app"
PREFIX_TAG = "nbstack:prefix"
#: Where each run's logs, timings.json and report.json go: <OUTPUT>/<app>/.
OUTPUT = ROOT / ".cache" / "test-aws"
#: A phase line of the collection's stdout callback: "15:09:17 preflight".
PHASE_LINE = re.compile(r"^\d\d:\d\d:\d\d ([a-z][a-z_-]*)$")
#: The callback's closing line: "Phases: preflight 12 s, network 3.5 s (1 change); total 31 s".
PHASES_SUMMARY = re.compile(r"^Phases: (.*); total (.*)$", re.MULTILINE)
IN_PROGRESS = "_IN_PROGRESS"
#: up.yml's line of AWS's own timings (the summary filter's aws_phases):
#: "AWS phases: stack nbt-1a2b3c-ben updated 35 s, instance launch 31 s, task start 59 s (image pull 56 s), ...;
#: together 2 min 53 s (overlaps counted once) of 3 min 12 s since up.yml began".
AWS_PHASES = re.compile(r"^AWS phases: (.*); together (.*?)(?: \(overlaps counted once\))? of (.*) since up\.yml began$", re.MULTILINE)
#: One phase of that line: its name, its duration, and what the parentheses say (a detail, where its end comes from).
AWS_PHASE = re.compile(r"([^,(]+?) (\d+(?:\.\d)? s|\d+ min \d\d s)(?: \(([^)]*)\))?(?:, |$)")


#: What the suite reads from the environment (README, "Testing on a real account").
REQUIRED = {
    "NBSTACK_TEST_REPO_URL": "a scratch HTTPS git repository, which the servers clone and push autosave branches to",
    "NBSTACK_TEST_GIT_TOKEN": "a token that can clone and push it",
}


def missing_requirements(environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(why the suite is skipped, what it lacks to run): at most one of the two is non-empty.

    Without AWS_PROFILE nothing runs (CI has none). NBSTACK_TEST_AWS_ALLOW_ENDPOINT=1
    with AWS_ENDPOINT_URL lets a dry run of the harness against the local
    emulator go without a profile.
    """
    env = os.environ if environ is None else environ
    endpoint = env.get("NBSTACK_TEST_AWS_ALLOW_ENDPOINT") == "1" and env.get("AWS_ENDPOINT_URL")
    if not env.get("AWS_PROFILE") and not endpoint:
        return 'make test-aws needs AWS_PROFILE (a sandbox account\'s profile; README, "Testing on a real account"): not set, so nothing was created', ""
    lacking = [f"{name} ({meaning})" for name, meaning in REQUIRED.items() if not env.get(name)]
    return "", ("make test-aws also needs " + "; ".join(lacking)) if lacking else ""


def now() -> datetime:
    return datetime.now(timezone.utc)


def say(text: str) -> None:
    """A progress line on the terminal (the suite runs with -s: it takes an hour, a person follows it)."""
    print(f"[test-aws {time.strftime('%H:%M:%S')}] {text}", flush=True)


def poll(predicate: Callable[[], T], timeout: float, what: str, interval: float = 15.0) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy; TimeoutError naming `what` otherwise."""
    return wait_until(predicate, timeout=timeout, what=what, interval=interval)


@dataclass
class TimedRun(PlaybookRun):
    """A playbook run with its wall time and when each phase started (seconds from the run's start)."""

    playbook: str = ""
    prefix: str = ""
    seconds: float = 0.0
    phase_starts: list[tuple[str, float]] = field(default_factory=list)

    def __repr__(self) -> str:
        # Short in assertion reports: the output is in the run's log file and in the messages that need it.
        return f"TimedRun({self.playbook} {self.prefix}, exit {self.returncode}, {self.seconds:.0f} s)"

    @property
    def phases_line(self) -> str:
        found = PHASES_SUMMARY.search(self.output)
        return found.group(0) if found else ""

    def phases_started(self) -> list[str]:
        return [name for name, _at in self.phase_starts]

    def since_last_phase(self) -> float:
        """Seconds from the start of the last phase that began to the run's end (the whole run if none began)."""
        return self.seconds - (self.phase_starts[-1][1] if self.phase_starts else 0.0)


def parse_phase_timings(line: str) -> dict[str, float]:
    """Each phase's seconds from the callback's line ("network 3.5 s (1 change)", "instance 4 min 05 s")."""
    body = PHASES_SUMMARY.search(line)
    if not body:
        return {}
    timings = {}
    for part in body.group(1).split(", "):
        name, _, duration = part.partition(" ")
        timings[name] = duration_seconds(duration.split(" (")[0])
    timings["total"] = duration_seconds(body.group(2))
    return timings


def parse_aws_phases(output: str) -> dict[str, Any]:
    """up.yml's AWS phases as figures: each phase's seconds and notes, their sum (overlaps once), the wall time; {} without the line."""
    line = AWS_PHASES.search(output)
    if not line:
        return {}
    return {
        "phases": [
            {"name": name, "seconds": duration_seconds(duration), "notes": notes or ""} for name, duration, notes in AWS_PHASE.findall(line.group(1))
        ],
        "together_seconds": duration_seconds(line.group(2)),
        "wall_seconds": duration_seconds(line.group(3)),
    }


def duration_seconds(text: str) -> float:
    """'31 s', '3.5 s', '2 min 05 s', '1 h 02 min': seconds."""
    units = {"h": 3600.0, "min": 60.0, "s": 1.0, "ms": 0.001}
    return sum(float(value) * units.get(unit, 0.0) for value, unit in re.findall(r"([\d.]+)\s*(h|min|ms|s)\b", text))


def public_cidr() -> str:
    """This machine's public address as a /32 (checkip.amazonaws.com), so that the tests can reach the load balancer."""
    with urllib.request.urlopen("https://checkip.amazonaws.com", timeout=20) as answer:
        return answer.read().decode().strip() + "/32"


class Account:
    """boto3 clients for the account and region the environment names (cached, one per service)."""

    def __init__(self, region: str) -> None:
        self.region = region
        self.session = boto3.session.Session(region_name=region)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self.session.client(service.replace("_", "-"))
            return self._clients[service]

    def identity(self) -> str:
        return str(self.sts.get_caller_identity()["Account"])


class Team:
    """The throwaway team: settings, per-person vault files, the playbooks as a person runs them, and a ledger."""

    def __init__(self, account: Account, *, repo_url: str, git_token: str, allowed_cidr: str, instance_type: str, app: str | None = None) -> None:
        self.aws = account
        self.region = account.region
        self.app = app or f"nbt-{secrets.token_hex(3)}"
        self.folder = OUTPUT / self.app
        (self.folder / "logs").mkdir(parents=True, exist_ok=True)
        self.instance_type = instance_type
        self.settings_path = self.folder / "settings.yml"
        self.settings: dict[str, Any] = {
            "aws_region": self.region,
            "notebook_app_name": self.app,
            "notebook_allowed_cidrs": [allowed_cidr],
            "notebook_allow_plain_http": True,
            "notebook_repo_url": repo_url,
            "notebook_instance_type": instance_type,
            # One vault file per person (several prefixes run at once); the team file plays no part.
            "notebook_team_vault": "",
        }
        self.write_settings()
        self.vaults = PersonVaults(self.folder / "vault")
        self._values = {
            "vault_github_token": git_token,
            "vault_notebook_password": "nbpw-" + secrets.token_hex(12),
            "vault_warehouse_password": "whpw-" + secrets.token_hex(12),
        }
        self.prefixes: set[str] = set()
        self.runs: list[TimedRun] = []
        #: Runs started, interrupted ones included: each run's log file has its own number.
        self._count = 0
        self.instances: dict[str, dict[str, Any]] = {}
        #: Model buckets the persistent stack named during the run.
        self.buckets: set[str] = set()
        self.started = now()
        self._lock = threading.Lock()

    # ----------------------------------------------------------- settings
    def write_settings(self, **changes: Any) -> None:
        """The team's settings file (as the team keeps group_vars/all/main.yml), with `changes` applied."""
        self.settings.update(changes)
        self.settings_path.write_text("---\n" + yaml.safe_dump(self.settings, sort_keys=False))

    def stack_name(self, prefix: str) -> str:
        return f"{self.app}-{prefix}"

    # -------------------------------------------------------------- runs
    def run(self, playbook: str, *extra: str, prefix: str = "", vault: bool = False, timeout: float = 3600) -> TimedRun:
        """Run one playbook to its end, its output streamed to logs/NN-<playbook>-<prefix>.log and read back.

        The playbook runs in a session of its own; an interrupt (Ctrl-C,
        SIGTERM) stops it with SIGINT, as a person's Ctrl-C would, and is
        raised again so that the teardown runs.
        """
        args = [str(BIN / "ansible-playbook"), playbook, "-e", f"@{self.settings_path}"]
        if prefix:
            args += ["-e", f"prefix={prefix}"]
            with self._lock:
                self.prefixes.add(prefix)
        if vault:
            if prefix not in self.vaults.vaults:
                self.vaults.write(prefix, dict(self._values))
            args += self.vaults.args(prefix)
        args += list(extra)
        env = {**os.environ, "ANSIBLE_NOCOLOR": "1", "ANSIBLE_FORCE_COLOR": "0", "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
        with self._lock:
            self._count += 1
            number = self._count
            log = self.folder / "logs" / f"{number:02d}-{playbook.removesuffix('.yml')}{'-' + prefix if prefix else ''}.log"
        say(f"{' '.join(['ansible-playbook', playbook, *args[4:]])}  (log: {log.relative_to(ROOT)})")
        phase_starts: list[tuple[str, float]] = []
        start = time.monotonic()
        started_at = now()
        with log.open("w") as output:
            process = subprocess.Popen(
                args,
                cwd=ROOT,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                errors="replace",
                start_new_session=True,
            )
            # A run past its bound is stopped as a person would stop it (Ctrl-C), even while it prints nothing.
            watchdog = threading.Timer(timeout, lambda: os.killpg(process.pid, signal.SIGINT))
            watchdog.start()
            try:
                assert process.stdout is not None
                for line in process.stdout:
                    output.write(line)
                    output.flush()
                    found = PHASE_LINE.match(line.rstrip("\n"))
                    if found:
                        phase_starts.append((found.group(1), time.monotonic() - start))
                process.wait()
            except BaseException:
                stop_process_group(process)
                raise
            finally:
                watchdog.cancel()
            if time.monotonic() - start >= timeout:
                output.write(f"\n[test-aws] stopped with SIGINT after {timeout / 60:.0f} min\n")
        seconds = time.monotonic() - start
        text = log.read_text(errors="replace")
        done = TimedRun(args, process.returncode, text, playbook=playbook, prefix=prefix, seconds=seconds, phase_starts=phase_starts)
        with self._lock:
            self.runs.append(done)
            self._record_timing(done, started_at)
        say(f"{playbook}{' ' + prefix if prefix else ''}: exit {done.returncode} after {seconds / 60:.1f} min. {done.phases_line}")
        self.observe()
        return done

    def up(self, prefix: str, *extra: str, timeout: float = 3600) -> TimedRun:
        return self.run("up.yml", *extra, prefix=prefix, vault=True, timeout=timeout)

    def down(self, prefix: str, *extra: str) -> TimedRun:
        return self.run("down.yml", *extra, prefix=prefix)

    def image(self) -> TimedRun:
        return self.run("image.yml")

    def status(self) -> TimedRun:
        return self.run("status.yml")

    def _record_timing(self, run: TimedRun, started_at: datetime) -> None:
        """Append the run to timings.json (rewritten whole after each run, so an interrupted suite keeps what it measured)."""
        path = self.folder / "timings.json"
        entries = json.loads(path.read_text())["runs"] if path.is_file() else []
        entries.append(
            {
                "playbook": run.playbook,
                "prefix": run.prefix,
                # The extra arguments name settings and vault files, never a secret value.
                "arguments": ["@settings.yml" if arg == f"@{self.settings_path}" else arg for arg in run.args[2:]],
                "started": started_at.isoformat(),
                "wall_seconds": round(run.seconds, 1),
                "returncode": run.returncode,
                "phase_starts": [{"phase": name, "at_seconds": round(at, 1)} for name, at in run.phase_starts],
                "phases_line": run.phases_line,
                "phase_seconds": parse_phase_timings(run.phases_line),
                # What AWS's own timestamps say of the run (up.yml's "AWS phases" line; {} when nothing happened on AWS).
                "aws_phases": parse_aws_phases(run.output),
                "changed": run.recap["changed"] if re.search(r"localhost\s*:\s*ok=", run.output) else None,
            }
        )
        document = {"app": self.app, "region": self.region, "instance_type": self.instance_type, "runs": entries}
        path.write_text(json.dumps(document, indent=2) + "\n")

    # ------------------------------------------------------ AWS state
    def stack(self, name: str) -> dict[str, Any] | None:
        """The stack's description, or None when it does not exist (or is deleted)."""
        try:
            return dict(self.aws.cloudformation.describe_stacks(StackName=name)["Stacks"][0])
        except ClientError as error:
            if "does not exist" in str(error):
                return None
            raise

    def outputs(self, name: str) -> dict[str, str]:
        stack = self.stack(name) or {}
        return {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}

    def live_stacks(self) -> list[dict[str, Any]]:
        """Every stack of the app that is not deleted (found by name: the app name is unique to this run)."""
        pages = self.aws.cloudformation.get_paginator("list_stacks").paginate()
        return [s for page in pages for s in page["StackSummaries"] if s["StackName"].startswith(self.app + "-") and s["StackStatus"] != "DELETE_COMPLETE"]

    def stacks_in_progress(self) -> list[str]:
        return [f"{s['StackName']} {s['StackStatus']}" for s in self.live_stacks() if s["StackStatus"].endswith(IN_PROGRESS)]

    def service(self, prefix: str) -> dict[str, Any]:
        out = self.outputs(self.stack_name(prefix))
        return dict(self.aws.ecs.describe_services(cluster=out["ClusterName"], services=[out["ServiceName"]], include=["TAGS"])["services"][0])

    def tasks(self, prefix: str) -> list[dict[str, Any]]:
        """The service's tasks that are running or on their way."""
        out = self.outputs(self.stack_name(prefix))
        arns = self.aws.ecs.list_tasks(cluster=out["ClusterName"], serviceName=out["ServiceName"])["taskArns"]
        return list(self.aws.ecs.describe_tasks(cluster=out["ClusterName"], tasks=arns)["tasks"]) if arns else []

    def host_of(self, prefix: str, task: dict[str, Any]) -> dict[str, Any]:
        """The EC2 instance (with its tags as a dict under "Tags") that runs `task`."""
        cluster = self.outputs(self.stack_name(prefix))["ClusterName"]
        described = self.aws.ecs.describe_container_instances(cluster=cluster, containerInstances=[task["containerInstanceArn"]])
        host = described["containerInstances"][0]["ec2InstanceId"]
        instance = self.aws.ec2.describe_instances(InstanceIds=[host])["Reservations"][0]["Instances"][0]
        return {**instance, "Tags": {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}}

    def group(self, prefix: str) -> dict[str, Any]:
        name = self.outputs(self.stack_name(prefix))["AutoScalingGroupName"]
        return dict(self.aws.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0])

    def in_service_instances(self, prefix: str) -> list[str]:
        return sorted(i["InstanceId"] for i in self.group(prefix)["Instances"] if i["LifecycleState"] == "InService")

    def target_states(self, prefix: str) -> list[str]:
        arn = self.outputs(self.stack_name(prefix))["TargetGroupArn"]
        return [d["TargetHealth"]["State"] for d in self.aws.elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]]

    def healthy(self, prefix: str) -> bool:
        return "healthy" in self.target_states(prefix)

    def api_token(self, prefix: str) -> str:
        return str(self.aws.secretsmanager.get_secret_value(SecretId=f"{self.app}/{prefix}/api-token")["SecretString"])

    def notebook_url(self, prefix: str) -> str:
        return self.outputs(self.stack_name(prefix))["NotebookUrl"]

    def answers(self, prefix: str) -> bool:
        """The person's Jupyter answers its REST API through the load balancer, with the API token."""
        request = urllib.request.Request(self.notebook_url(prefix).rstrip("/") + "/api/status", headers={"Authorization": f"token {self.api_token(prefix)}"})
        try:
            with urllib.request.urlopen(request, timeout=20) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def stopped(self, prefix: str) -> bool:
        """Idle-stopped: the group wants no instance and none is in service."""
        group = self.group(prefix)
        return group["DesiredCapacity"] == 0 and not [i for i in group["Instances"] if i["LifecycleState"] == "InService"]

    # ---------------------------------------------------- the ledger
    def observe(self) -> None:
        """Note every instance of the app (by its nbstack:app tag) with its type, launch and, once gone, its end; and the model bucket.

        Terminated instances stay visible for about an hour, so a look after
        each run also sees the instances that came and went during it.
        """
        try:
            pages = self.aws.ec2.get_paginator("describe_instances").paginate(Filters=[{"Name": f"tag:{APP_TAG}", "Values": [self.app]}])
            found = [i for page in pages for r in page["Reservations"] for i in r["Instances"]]
            bucket = self.outputs(f"{self.app}-persistent").get("ModelBucketName")
        except ClientError as error:
            say(f"could not look at the team's instances: {error}")
            return
        moment = now()
        with self._lock:
            if bucket:
                self.buckets.add(bucket)
            for instance in found:
                tags = {tag["Key"]: tag["Value"] for tag in instance.get("Tags", [])}
                entry = self.instances.setdefault(
                    instance["InstanceId"],
                    {"type": instance["InstanceType"], "launched": instance["LaunchTime"], "owner": self.stack_name(tags.get(PREFIX_TAG, "?")), "ended": None},
                )
                state = instance["State"]["Name"]
                if state in ("pending", "running", "stopping"):
                    entry["last_seen"] = moment
                elif entry["ended"] is None:
                    entry["ended"] = transition_time(instance.get("StateTransitionReason", "")) or entry.get("last_seen") or moment

    def usage(self) -> tuple[list[InstanceUse], list[StackUse]]:
        volume = int((self.settings.get("notebook_root_volume") or {}).get("size", 100))
        instances = [
            InstanceUse(key, value["type"], value["launched"], value["ended"], value["owner"], volume_gb=volume) for key, value in self.instances.items()
        ]
        stacks = []
        for summary in self.aws.cloudformation.get_paginator("list_stacks").paginate():
            for stack in summary["StackSummaries"]:
                name = stack["StackName"]
                if not name.startswith(self.app + "-"):
                    continue
                kind = "network" if name == f"{self.app}-network" else "persistent" if name == f"{self.app}-persistent" else "instance"
                deleted = stack.get("DeletionTime") if stack["StackStatus"] == "DELETE_COMPLETE" else None
                stacks.append(StackUse(name, kind, stack["CreationTime"], deleted))
        return instances, stacks

    def bill(self) -> list[str]:
        """What the run created and what it cost, as lines to print; also written to report.json."""
        self.observe()
        prices = load_prices(self.region)
        instances, stacks = self.usage()
        moment = now()
        found = estimate(instances, stacks, prices, moment)
        lines = [f"make test-aws: app {self.app} in {self.region}, {self.started:%H:%M}-{moment:%H:%M} UTC; created:"]
        lines += report(found, prices, self.region)
        for bucket in sorted(self.buckets):
            lines.insert(-2, f"  bucket {bucket} (S3 storage not priced): {'still there' if self._bucket_exists(bucket) else 'deleted'}")
        (self.folder / "report.json").write_text(
            json.dumps(
                {
                    "app": self.app,
                    "region": self.region,
                    "started": self.started.isoformat(),
                    "ended": moment.isoformat(),
                    "items": [{"what": line.what, "minutes": round(line.minutes, 1), "cost": line.cost} for line in found.lines],
                    "total": found.total,
                    "price_file_read_on": prices.get("read_on"),
                },
                indent=2,
            )
            + "\n"
        )
        return lines

    def _bucket_exists(self, bucket: str) -> bool:
        try:
            self.aws.s3.head_bucket(Bucket=bucket)
            return True
        except ClientError:
            return False

    # ------------------------------------------------------- teardown
    def teardown(self) -> list[str]:
        """down.yml (work volume purged) for each person, down.yml -e persistent=absent, then the sweep; what each step left, as lines."""
        notes = []
        people = set(self.prefixes) | {
            s["StackName"].removeprefix(self.app + "-").removesuffix("-work") for s in self.live_stacks()
        }
        people -= {"network", "persistent"}
        for prefix in sorted(people):
            run = self.down(prefix, "-e", "purge_work=true", "-e", "force=true")
            if run.returncode != 0:
                notes.append(f"down.yml -e prefix={prefix} failed (exit {run.returncode}); the sweep removes what it left")
        if self.live_stacks():
            run = self.run("down.yml", "-e", "persistent=absent", prefix=sorted(people)[0] if people else "teardown")
            if run.returncode != 0:
                notes.append(f"down.yml -e persistent=absent failed (exit {run.returncode}); the sweep removes what it left")
        notes += [f"swept: {line}" for line in sweep(self.aws, self.app)]
        return notes


def transition_time(reason: str) -> datetime | None:
    """The time in an instance's StateTransitionReason ("User initiated (2026-11-26 18:40:12 GMT)")."""
    found = re.search(r"\((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) (?:GMT|UTC)\)", reason)
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc) if found else None


def stop_process_group(process: subprocess.Popen[str]) -> None:
    """SIGINT to the playbook's session (Ansible ends its play), SIGKILL after 60 s."""
    for sig, grace in ((signal.SIGINT, 60), (signal.SIGKILL, 10)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def interrupts_deferred() -> Iterator[None]:
    """Ctrl-C and SIGTERM do not cut the block short (the teardown): each says so and the block goes on."""

    def refuse(signum: int, _frame: Any) -> None:
        say(f"signal {signum} ignored: the teardown is running (it removes everything the suite created); kill -9 leaves it to the sweep")

    previous = {sig: signal.signal(sig, refuse) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ------------------------------------------------------------------ sweep
def sweep(aws: Account, app: str) -> list[str]:
    """Remove every resource of `app` that is still there; one line per thing removed (or that could not be)."""
    done: list[str] = []
    steps = (
        _sweep_stacks,
        _sweep_instances,
        _sweep_load_balancers,
        _sweep_nat_gateways,
        _sweep_addresses,
        _sweep_buckets,
        _sweep_repositories,
        _sweep_log_groups,
        _sweep_secrets,
    )
    for step in steps:
        try:
            done += step(aws, app)
        except ClientError as error:
            done.append(f"{step.__name__.removeprefix('_sweep_')}: {error}")
    vpcs = aws.ec2.describe_vpcs(Filters=[{"Name": f"tag:{APP_TAG}", "Values": [app]}])["Vpcs"]
    done += [f"VPC {vpc['VpcId']} is still there (no charge of its own; delete it in the console)" for vpc in vpcs]
    return done


def _stack_order(app: str, name: str) -> int:
    """People's server stacks first, then their work stacks, then persistent, then network (each imports from the next)."""
    if name.endswith("-work"):
        return 1
    return {f"{app}-persistent": 2, f"{app}-network": 3}.get(name, 0)


def _sweep_stacks(aws: Account, app: str) -> list[str]:
    cfn = aws.cloudformation
    done = []

    def live() -> list[dict[str, Any]]:
        pages = cfn.get_paginator("list_stacks").paginate()
        return [s for page in pages for s in page["StackSummaries"] if s["StackName"].startswith(app + "-") and s["StackStatus"] != "DELETE_COMPLETE"]

    for summary in sorted(live(), key=lambda s: _stack_order(app, s["StackName"])):
        name = summary["StackName"]
        status = poll(partial(_settled, cfn, name), timeout=3600, what=f"{name} to leave its *_IN_PROGRESS state", interval=20)
        if status == "DELETE_COMPLETE":
            continue
        if status == "UPDATE_ROLLBACK_FAILED":
            cfn.continue_update_rollback(StackName=name)
            poll(partial(_settled, cfn, name), timeout=3600, what=f"{name}'s rollback", interval=20)
        cfn.update_termination_protection(StackName=name, EnableTerminationProtection=False)
        cfn.delete_stack(StackName=name)
        status = poll(partial(_settled, cfn, name), timeout=3600, what=f"{name} to be deleted", interval=20)
        if status == "DELETE_FAILED":
            # Keep what cannot be deleted (a bucket with objects): the steps below remove it by tag and name.
            failed = [e["LogicalResourceId"] for e in cfn.describe_stack_resources(StackName=name)["StackResources"] if e["ResourceStatus"] == "DELETE_FAILED"]
            cfn.delete_stack(StackName=name, RetainResources=failed)
            status = poll(partial(_settled, cfn, name), timeout=3600, what=f"{name} to be deleted", interval=20)
        done.append(f"stack {name} ({summary['StackStatus']}): {status}")
    return done


def _settled(cfn: Any, name: str) -> str:
    """The stack's status once it is not in progress ("" while it is), DELETE_COMPLETE once it is gone."""
    try:
        status = str(cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"])
    except ClientError as error:
        if "does not exist" in str(error):
            return "DELETE_COMPLETE"
        raise
    return "" if status.endswith(IN_PROGRESS) else status


def _sweep_instances(aws: Account, app: str) -> list[str]:
    filters = [{"Name": f"tag:{APP_TAG}", "Values": [app]}, {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
    found = [i["InstanceId"] for r in aws.ec2.describe_instances(Filters=filters)["Reservations"] for i in r["Instances"]]
    if found:
        aws.ec2.terminate_instances(InstanceIds=found)
    return [f"instance {instance} terminated" for instance in found]


def _sweep_load_balancers(aws: Account, app: str) -> list[str]:
    found = _tagged(aws, app, "elasticloadbalancing:loadbalancer")
    for arn in found:
        aws.elbv2.delete_load_balancer(LoadBalancerArn=arn)
    return [f"load balancer {arn} deleted" for arn in found]


def _sweep_nat_gateways(aws: Account, app: str) -> list[str]:
    filters = [{"Name": f"tag:{APP_TAG}", "Values": [app]}, {"Name": "state", "Values": ["pending", "available"]}]
    found = [gateway["NatGatewayId"] for gateway in aws.ec2.describe_nat_gateways(Filter=filters)["NatGateways"]]
    for gateway in found:
        aws.ec2.delete_nat_gateway(NatGatewayId=gateway)

    def gone() -> bool:
        states = {g["State"] for g in aws.ec2.describe_nat_gateways(NatGatewayIds=found)["NatGateways"]} if found else set()
        return states <= {"deleted", "failed"}

    poll(gone, timeout=900, what="the NAT gateways to be deleted (their addresses are released next)", interval=15)
    return [f"NAT gateway {gateway} deleted" for gateway in found]


def _sweep_addresses(aws: Account, app: str) -> list[str]:
    found = aws.ec2.describe_addresses(Filters=[{"Name": f"tag:{APP_TAG}", "Values": [app]}])["Addresses"]
    for address in found:
        aws.ec2.release_address(AllocationId=address["AllocationId"])
    return [f"Elastic IP {address['PublicIp']} released" for address in found]


def _tagged(aws: Account, app: str, kind: str) -> list[str]:
    """ARNs of the app's resources of one kind ("s3", "logs:log-group"), by the nbstack:app tag."""
    pages = aws.resourcegroupstaggingapi.get_paginator("get_resources").paginate(TagFilters=[{"Key": APP_TAG, "Values": [app]}], ResourceTypeFilters=[kind])
    return [item["ResourceARN"] for page in pages for item in page["ResourceTagMappingList"]]


def _sweep_buckets(aws: Account, app: str) -> list[str]:
    s3 = aws.s3
    names = {b["Name"] for b in s3.list_buckets().get("Buckets", []) if b["Name"].startswith(app + "-")}
    names |= {arn.rsplit(":", 1)[1] for arn in _tagged(aws, app, "s3")}
    done = []
    for bucket in sorted(names):
        try:
            done.append(_empty_and_delete(s3, bucket))
        except ClientError as error:
            done.append(f"bucket {bucket}: {error}")
    return done


def _empty_and_delete(s3: Any, bucket: str) -> str:
    """Delete every object version, delete marker and unfinished upload of the bucket, then the bucket."""
    versions = 0
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        keys = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])]
        for start in range(0, len(keys), 1000):
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        versions += len(keys)
    for upload in s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []):
        s3.abort_multipart_upload(Bucket=bucket, Key=upload["Key"], UploadId=upload["UploadId"])
    s3.delete_bucket(Bucket=bucket)
    return f"bucket {bucket} emptied ({versions} versions and delete markers) and deleted"


def _sweep_repositories(aws: Account, app: str) -> list[str]:
    pages = aws.ecr.get_paginator("describe_repositories").paginate()
    names = [r["repositoryName"] for page in pages for r in page["repositories"] if r["repositoryName"].startswith(app + "/")]
    for name in names:
        aws.ecr.delete_repository(repositoryName=name, force=True)
    return [f"ECR repository {name} deleted with its images" for name in names]


def _sweep_log_groups(aws: Account, app: str) -> list[str]:
    pages = aws.logs.get_paginator("describe_log_groups").paginate(logGroupNamePrefix=app + "-")
    names = {g["logGroupName"] for page in pages for g in page["logGroups"]}
    names |= {arn.split(":log-group:", 1)[1].removesuffix(":*") for arn in _tagged(aws, app, "logs:log-group")}
    for name in sorted(names):
        aws.logs.delete_log_group(logGroupName=name)
    return [f"log group {name} deleted" for name in sorted(names)]


def _sweep_secrets(aws: Account, app: str) -> list[str]:
    pages = aws.secretsmanager.get_paginator("list_secrets").paginate(Filters=[{"Key": "name", "Values": [app + "/"]}], IncludePlannedDeletion=True)
    names = sorted({s["Name"] for page in pages for s in page["SecretList"] if s["Name"].startswith(app + "/")})
    done = []
    for name in names:
        try:
            aws.secretsmanager.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
            done.append(f"secret {name} deleted without recovery")
        except ClientError as error:
            done.append(f"secret {name}: {error}")
    return done


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or sys.argv[1] != "sweep" or not re.fullmatch(r"nbt-[0-9a-f]+", sys.argv[2]):
        sys.exit("usage: tests/aws/sandbox.py sweep nbt-<hex> [region]   (removes everything of that test app)")
    for line in sweep(Account(sys.argv[3] if len(sys.argv) == 4 else "eu-west-1"), sys.argv[2]) or ["nothing left"]:
        print(line)
