"""The container's environment contract: every variable it reads, declared once, typed.

VARIABLES is the one declaration: each variable's name, default, meaning and
parser. `Settings.from_environ()` reads the environment through it, the
Settings dataclass has one field per parsed variable (named after it), and
files/image/README.md lists the same table (a test keeps the two in step).
The ECS task definition sets these variables (secrets come from Secrets
Manager as environment variables too); the startup hooks, the Jupyter server
extension, the sidecar and the model helper all read them through
`Settings.from_environ()`.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .contract import PREFIX_PATTERN, SECRET_VARIABLES

__all__ = ["SECRET_VARIABLES", "VARIABLES", "Secret", "Settings", "SettingsError", "Variable", "without_secrets"]

_PREFIX = re.compile(PREFIX_PATTERN)

#: The target group's health checks: every 5 s, unhealthy after 10 failures in a row
#: (files/cloudformation/instance.yml, TargetGroup).
UNHEALTHY_AFTER_SECONDS = 50.0
#: Of the time a task has before ECS replaces it, what the clone leaves for Jupyter to listen and pass a check.
CLONE_RESERVE_SECONDS = 30.0
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SettingsError(ValueError):
    """The environment does not satisfy the contract; the message lists every problem.

    `problems` holds them one by one, each starting with the variable's name.
    """

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid container settings:\n  - " + "\n  - ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Secret:
    """A secret value that does not show up in reprs, logs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')" if self.value else "Secret('')"

    def __bool__(self) -> bool:
        return bool(self.value)


# --- Parsers: raw text -> value; a ValueError's args are the problems, each
# --- finishing the sentence "<NAME> ...".


def _prefix(raw: str) -> str:
    if not _PREFIX.fullmatch(raw):
        raise ValueError(f"must match {PREFIX_PATTERN}, got {raw!r}")
    return raw


def _base_url(raw: str) -> str:
    if not (raw.startswith("/") and raw.endswith("/")):
        raise ValueError(f"must start and end with '/', got {raw!r}")
    return raw


def _repo_url(raw: str) -> str:
    if not raw:
        return raw
    problems = []
    parts = urlsplit(raw)
    plain_http_ok = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
    if parts.scheme != "https" and not plain_http_ok:
        problems.append(f"must be an https URL (plain http only on loopback), got scheme {parts.scheme!r}")
    if parts.username or parts.password:
        problems.append("must not contain credentials; use NBSTACK_GIT_TOKEN")
    if problems:
        raise ValueError(*problems)
    return raw


def _port(raw: str) -> int:
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ValueError(f"must be a TCP port (1-65535), got {raw!r}")
    return int(raw)


def _boolean(raw: str) -> bool:
    if raw not in ("true", "false"):
        raise ValueError(f"must be true or false, got {raw!r}")
    return raw == "true"


def _number(low: float, high: float, *, what: str = "a number", low_open: bool = False) -> Callable[[str], float]:
    """A parser of numbers in [low, high] (in (low, high] when `low_open`)."""
    interval = f"{'(' if low_open else '['}{low:g}, {high:g}]"

    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            value = math.nan  # fails both comparisons below
        if not ((low < value if low_open else low <= value) and value <= high):
            raise ValueError(f"must be {what} in {interval}, got {raw!r}")
        return value

    return parse


@dataclass(frozen=True)
class Variable:
    """One environment variable of the contract.

    `default` is the text used when the variable is unset or blank, as the
    README shows it (None: required; `<prefix>` stands for NBSTACK_PREFIX's
    value). `fallback` names a variable read before the default. `parse`
    turns the text into the Settings field named after the variable; None
    means the variable has no field of its own (it is only another's fallback).
    """

    name: str
    default: str | None
    description: str
    parse: Callable[[str], Any] | None = str
    fallback: str | None = None

    @property
    def secret(self) -> bool:
        return self.name in SECRET_VARIABLES

    @property
    def field_name(self) -> str:
        """The Settings field: the name without NBSTACK_, lower case."""
        return self.name.removeprefix("NBSTACK_").lower()

    def raw(self, environ: Mapping[str, str]) -> str:
        """The text to parse: secrets verbatim (a password may start or end with spaces)."""
        if self.secret:
            return environ.get(self.name, "")
        value = environ.get(self.name, "").strip()
        if not value and self.fallback:
            value = environ.get(self.fallback, "").strip()
        return value or (self.default or "").replace("<prefix>", environ.get("NBSTACK_PREFIX", "").strip())


#: Every variable the container reads, secrets included, in the README's order.
VARIABLES: tuple[Variable, ...] = (
    Variable("NBSTACK_PREFIX", None, "The person's prefix, e.g. `alice`; names the autosave branches.", _prefix),
    Variable("NBSTACK_BASE_URL", "/<prefix>/", "Jupyter's base URL (the ALB path rule).", _base_url),
    Variable("NBSTACK_NOTEBOOK_PORT", "8888", "Port Jupyter listens on (all interfaces).", _port),
    Variable("NBSTACK_HEALTH_PORT", "8889", "Port of the health sidecar (`GET /health`).", _port),
    Variable(
        "NBSTACK_WORK_DIR",
        "/home/jovyan/work",
        "Host volume; the repository is cloned into it; Jupyter's root_dir.",
        Path,
    ),
    Variable(
        "NBSTACK_REPO_URL", "", "https URL of the notebook repository; empty: no clone, no autosave push.", _repo_url
    ),
    Variable("NBSTACK_GIT_USER_NAME", "", "git user.name for commits made in the container."),
    Variable("NBSTACK_GIT_USER_EMAIL", "", "git user.email for commits made in the container."),
    Variable("NBSTACK_MODEL_BUCKET", "", "Versioned S3 bucket for `nbstack_runtime.models`."),
    Variable("NBSTACK_WAREHOUSE_HOST", "", "Warehouse host; empty: no ~/.pgpass."),
    Variable("NBSTACK_WAREHOUSE_PORT", "5439", "Warehouse port (Redshift's default, as the playbooks set it).", _port),
    Variable("NBSTACK_WAREHOUSE_DATABASE", "", "Warehouse database name."),
    Variable("NBSTACK_WAREHOUSE_USER", "", "Warehouse user name."),
    Variable("NBSTACK_WAREHOUSE_ROLE_ARN", "", "Cross-account role; when set, AWS profile `warehouse` assumes it."),
    Variable(
        "NBSTACK_AUTOSAVE_TIMEOUT",
        "90",
        "Seconds the autosave on SIGTERM may take (ECS stop timeout is 120; recording the outcome takes up to 10 "
        "more).",
        # With the outcome's tag (autosave.RECORD_TIMEOUT_SECONDS, 10 s) it leaves
        # the server 10 s to exit before ECS's SIGKILL at 120 s.
        _number(0, 100, what="seconds", low_open=True),
    ),
    Variable(
        "NBSTACK_AUTOSAVE_MAX_FILE_MB",
        "100",
        "Files above this many MiB are left out of the autosave (they stay on disk; the snapshot names them): a git "
        "host refuses a whole push for one (GitHub above 100); 0: no limit.",
        _number(0, 102400, what="MiB"),
    ),
    Variable(
        "NBSTACK_WORK_KEPT",
        "false",
        "true when the work directory outlives the task (the person's work volume): then what an autosave could "
        "not push stays there, and does not hold up an idle stop.",
        _boolean,
    ),
    Variable(
        "NBSTACK_IDLE_TIMEOUT_MINUTES",
        "60",
        "Idle stop: minutes without activity and without a busy kernel before the sidecar autosaves and scales "
        "to zero; 0: never.",
        _number(0, 7 * 24 * 60),
    ),
    Variable(
        "NBSTACK_MAX_LIFETIME_HOURS",
        "0",
        "Stop this many hours after the server started, busy or not; 0: off.",
        _number(0, 24 * 366),
    ),
    Variable("NBSTACK_IDLE_POLL_SECONDS", "60", "How often the idle watcher looks at the server.", _number(1, 3600)),
    Variable(
        "NBSTACK_HEALTH_CHECK_GRACE_SECONDS",
        "300",
        "The service's health check grace period (notebook_health_check_grace_period): the first clone gets "
        "what the load balancer allows before ECS replaces a task that is not listening yet, less 30 s for "
        "Jupyter's start.",
        _number(0, 7200, what="seconds"),
    ),
    Variable("NBSTACK_CLUSTER", "", "ECS cluster of the person's service (whose tags the idle watcher writes)."),
    Variable(
        "NBSTACK_SERVICE",
        "",
        "The person's ECS service; the idle watcher tags it (last activity, stop time and reason).",
    ),
    Variable("NBSTACK_AUTOSCALING_GROUP", "", "The person's auto scaling group; the idle stop sets it to 0 instances."),
    Variable("AWS_REGION", "", "Region (falls back to AWS_DEFAULT_REGION).", fallback="AWS_DEFAULT_REGION"),
    Variable("AWS_DEFAULT_REGION", "", "Region, as the AWS SDKs read it.", parse=None),
    Variable("NBSTACK_GIT_TOKEN", "", "Secret: token for the repository (basic-auth password).", Secret),
    Variable(
        "NBSTACK_NOTEBOOK_PASSWORD",
        "",
        "Secret, required: the Jupyter login password (hashed before Jupyter sees it); missing: the container stops.",
        Secret,
    ),
    Variable("NBSTACK_WAREHOUSE_PASSWORD", "", "Secret: the warehouse user's password (written to ~/.pgpass).", Secret),
    Variable(
        "NBSTACK_API_TOKEN",
        "",
        "Secret: the person's API token for scripts and editors (`Authorization: token ...`), at least 32 "
        "characters; Jupyter keeps only its SHA-256 digest; empty: password login only.",
        Secret,
    ),
)


@dataclass(frozen=True)
class Settings:
    """What the container was told by its task definition: one field per variable in VARIABLES, plus HOME.

    No defaults here: they live in VARIABLES. `from_environ` builds the
    fields from that table, so a field missing on either side fails at once.
    """

    prefix: str
    base_url: str
    notebook_port: int
    health_port: int
    work_dir: Path
    repo_url: str
    git_user_name: str
    git_user_email: str
    model_bucket: str
    warehouse_host: str
    warehouse_port: int
    warehouse_database: str
    warehouse_user: str
    warehouse_role_arn: str
    autosave_timeout: float
    autosave_max_file_mb: float
    work_kept: bool
    idle_timeout_minutes: float
    max_lifetime_hours: float
    idle_poll_seconds: float
    health_check_grace_seconds: float
    cluster: str
    service: str
    autoscaling_group: str
    aws_region: str
    git_token: Secret
    notebook_password: Secret
    warehouse_password: Secret
    api_token: Secret
    home: Path

    # Files the hooks write and the server extension / sidecar read.  They live
    # in HOME (the container's own disk), never in the work directory, so none
    # of them can be committed or autosaved.
    @property
    def state_dir(self) -> Path:
        return self.home / ".nbstack"

    @property
    def git_credentials_file(self) -> Path:
        return self.state_dir / "git-credentials"

    @property
    def jupyter_pid_file(self) -> Path:
        return self.state_dir / "jupyter.pid"

    @property
    def clone_timeout(self) -> float:
        """Seconds the first clone may take before the start step stops it and Jupyter starts on what it fetched.

        Until Jupyter listens the health check fails. ECS replaces a task
        whose target the load balancer marks unhealthy once the grace period
        is over, and the load balancer does so after UNHEALTHY_AFTER_SECONDS
        of failed checks: a clone longer than the later of the two is killed
        with its task, and every next task starts the same clone again. Left
        out: CLONE_RESERVE_SECONDS for Jupyter to listen and pass a check.
        """
        allowed = max(self.health_check_grace_seconds, UNHEALTHY_AFTER_SECONDS)
        return allowed - CLONE_RESERVE_SECONDS

    @property
    def startup_pid_file(self) -> Path:
        """The start step's notebook-user process while it clones; Jupyter listens only once it has ended."""
        return self.state_dir / "startup.pid"

    @property
    def health_pid_file(self) -> Path:
        return self.state_dir / "health.pid"

    @property
    def idle_token_file(self) -> Path:
        return self.state_dir / "idle-watcher-token"

    @property
    def jupyter_config_file(self) -> Path:
        return self.home / ".jupyter" / "jupyter_server_config.json"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read and validate the contract; raise SettingsError naming every problem.

        Secrets are optional here on purpose: after start.sh has unset them, the
        server extension and the model helper still read the other settings.
        The hooks that need a secret check for it themselves.
        """
        env = os.environ if environ is None else environ
        errors: list[str] = []
        values: dict[str, Any] = {}
        for variable in VARIABLES:
            if variable.parse is None:
                continue
            try:
                values[variable.field_name] = variable.parse(variable.raw(env))
            except ValueError as error:
                errors += [f"{variable.name} {problem}" for problem in error.args]
        if errors:
            raise SettingsError(errors)
        return cls(**values, home=Path(env.get("HOME", "").strip() or Path.home()))


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` for child processes that must not see any secret."""
    listed = {name for name in environ.get("JUPYTER_ENV_VARS_TO_UNSET", "").split(",") if name}
    drop = listed | set(SECRET_VARIABLES)
    return {key: value for key, value in environ.items() if key not in drop}


def why_idle_watcher_off(settings: Settings) -> str | None:
    """None when the settings ask for an idle stop the watcher can carry out; else why not.

    Here rather than in the watcher module: the start step's Jupyter config
    asks too, without importing the watcher and what it imports.
    """
    if settings.idle_timeout_minutes <= 0 and settings.max_lifetime_hours <= 0:
        return "NBSTACK_IDLE_TIMEOUT_MINUTES is 0 and there is no max lifetime"
    missing = [
        name
        for name, value in (
            ("NBSTACK_CLUSTER", settings.cluster),
            ("NBSTACK_SERVICE", settings.service),
            ("NBSTACK_AUTOSCALING_GROUP", settings.autoscaling_group),
        )
        if not value
    ]
    if missing:
        return f"{', '.join(missing)} not set, so there is nothing it could scale to zero"
    return None
