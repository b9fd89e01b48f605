"""The container's contract: every environment variable it reads, typed.

This module is the one place the variable names live. The ECS task definition
sets them (secrets come from Secrets Manager as environment variables too), the
startup hooks, the Jupyter server extension and the model helper all read them
through `Settings.from_environ()`, and files/image/README.md lists the same
table (a test keeps the two in step).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from .contract import PREFIX_PATTERN, SECRET_VARIABLES

#: (name, default, description) of every variable, secrets included; the
#: README table mirrors this.  A default of None means "required".
VARIABLES: tuple[tuple[str, str | None, str], ...] = (
    ("NBSTACK_PREFIX", None, "The person's prefix, e.g. `alice`; names the autosave branches."),
    ("NBSTACK_BASE_URL", "/<prefix>/", "Jupyter's base URL (the ALB path rule)."),
    ("NBSTACK_NOTEBOOK_PORT", "8888", "Port Jupyter listens on (all interfaces)."),
    ("NBSTACK_HEALTH_PORT", "8889", "Port of the health sidecar (`GET /health`)."),
    ("NBSTACK_WORK_DIR", "/home/jovyan/work", "Host volume; the repository is cloned into it; Jupyter's root_dir."),
    ("NBSTACK_REPO_URL", "", "https URL of the notebook repository; empty: no clone, no autosave push."),
    ("NBSTACK_GIT_USER_NAME", "", "git user.name for commits made in the container."),
    ("NBSTACK_GIT_USER_EMAIL", "", "git user.email for commits made in the container."),
    ("NBSTACK_MODEL_BUCKET", "", "Versioned S3 bucket for `nbstack_runtime.models`."),
    ("NBSTACK_WAREHOUSE_HOST", "", "Warehouse host; empty: no ~/.pgpass."),
    ("NBSTACK_WAREHOUSE_PORT", "5432", "Warehouse port."),
    ("NBSTACK_WAREHOUSE_DATABASE", "", "Warehouse database name."),
    ("NBSTACK_WAREHOUSE_USER", "", "Warehouse user name."),
    ("NBSTACK_WAREHOUSE_ROLE_ARN", "", "Cross-account role; when set, AWS profile `warehouse` assumes it."),
    ("NBSTACK_AUTOSAVE_TIMEOUT", "90", "Seconds the autosave on SIGTERM may take (ECS stop timeout is 120)."),
    ("NBSTACK_IDLE_TIMEOUT_MINUTES", "60", "Idle stop: minutes without activity and without a busy kernel before the sidecar autosaves and scales to zero; 0: never."),
    ("NBSTACK_MAX_LIFETIME_HOURS", "0", "Stop this many hours after the server started, busy or not; 0: off."),
    ("NBSTACK_IDLE_POLL_SECONDS", "60", "How often the idle watcher looks at the server."),
    ("NBSTACK_CLUSTER", "", "ECS cluster of the person's service (what the idle stop scales)."),
    ("NBSTACK_SERVICE", "", "The person's ECS service; the idle stop sets it to 0 tasks."),
    ("NBSTACK_AUTOSCALING_GROUP", "", "The person's auto scaling group; the idle stop sets it to 0 instances."),
    ("AWS_REGION", "", "Region (falls back to AWS_DEFAULT_REGION)."),
    ("AWS_DEFAULT_REGION", "", "Region, as the AWS SDKs read it."),
    ("NBSTACK_GIT_TOKEN", "", "Secret: token for the repository (basic-auth password)."),
    ("NBSTACK_NOTEBOOK_PASSWORD", "", "Secret, required: the Jupyter login password (hashed before Jupyter sees it); missing: nobody can log in."),
    ("NBSTACK_WAREHOUSE_PASSWORD", "", "Secret: the warehouse user's password (written to ~/.pgpass)."),
)

_PREFIX = re.compile(PREFIX_PATTERN)
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


class SettingsError(ValueError):
    """The environment does not satisfy the contract; the message lists every problem."""


@dataclass(frozen=True)
class Secret:
    """A secret value that does not show up in reprs, logs or tracebacks."""

    value: str = field(repr=False)

    def __repr__(self) -> str:
        return "Secret('***')" if self.value else "Secret('')"

    def __bool__(self) -> bool:
        return bool(self.value)


@dataclass(frozen=True)
class Settings:
    """What the container was told by its task definition."""

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
    aws_region: str
    home: Path
    idle_timeout_minutes: float = 60.0
    max_lifetime_hours: float = 0.0
    idle_poll_seconds: float = 60.0
    cluster: str = ""
    service: str = ""
    autoscaling_group: str = ""
    git_token: Secret = Secret("")
    notebook_password: Secret = Secret("")
    warehouse_password: Secret = Secret("")

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

        def text(name: str, default: str = "") -> str:
            return env.get(name, "").strip() or default

        def port(name: str, default: int) -> int:
            raw = text(name, str(default))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                errors.append(f"{name} must be a TCP port (1-65535), got {raw!r}")
                return default
            return int(raw)

        prefix = text("NBSTACK_PREFIX")
        if not _PREFIX.match(prefix):
            errors.append(f"NBSTACK_PREFIX must match {PREFIX_PATTERN}, got {prefix!r}")
        base_url = text("NBSTACK_BASE_URL", f"/{prefix}/")
        if not (base_url.startswith("/") and base_url.endswith("/")):
            errors.append(f"NBSTACK_BASE_URL must start and end with '/', got {base_url!r}")
        repo_url = text("NBSTACK_REPO_URL")
        if repo_url:
            parts = urlsplit(repo_url)
            plain_http_ok = parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            if parts.scheme != "https" and not plain_http_ok:
                errors.append(
                    "NBSTACK_REPO_URL must be an https URL (plain http only on loopback), "
                    f"got scheme {parts.scheme!r}"
                )
            if parts.password:
                errors.append("NBSTACK_REPO_URL must not contain credentials; use NBSTACK_GIT_TOKEN")
        timeout_raw = text("NBSTACK_AUTOSAVE_TIMEOUT", "90")
        try:
            autosave_timeout = float(timeout_raw)
            if not 0 < autosave_timeout <= 115:
                raise ValueError
        except ValueError:
            errors.append(f"NBSTACK_AUTOSAVE_TIMEOUT must be seconds in (0, 115], got {timeout_raw!r}")
            autosave_timeout = 90.0
        def number(name: str, default: float, low: float, high: float) -> float:
            raw = text(name, f"{default:g}")
            try:
                value = float(raw)
                if not low <= value <= high:
                    raise ValueError
            except ValueError:
                errors.append(f"{name} must be a number in [{low:g}, {high:g}], got {raw!r}")
                return default
            return value

        settings = cls(
            prefix=prefix,
            base_url=base_url,
            notebook_port=port("NBSTACK_NOTEBOOK_PORT", 8888),
            health_port=port("NBSTACK_HEALTH_PORT", 8889),
            work_dir=Path(text("NBSTACK_WORK_DIR", "/home/jovyan/work")),
            repo_url=repo_url,
            git_user_name=text("NBSTACK_GIT_USER_NAME"),
            git_user_email=text("NBSTACK_GIT_USER_EMAIL"),
            model_bucket=text("NBSTACK_MODEL_BUCKET"),
            warehouse_host=text("NBSTACK_WAREHOUSE_HOST"),
            warehouse_port=port("NBSTACK_WAREHOUSE_PORT", 5432),
            warehouse_database=text("NBSTACK_WAREHOUSE_DATABASE"),
            warehouse_user=text("NBSTACK_WAREHOUSE_USER"),
            warehouse_role_arn=text("NBSTACK_WAREHOUSE_ROLE_ARN"),
            autosave_timeout=autosave_timeout,
            aws_region=text("AWS_REGION") or text("AWS_DEFAULT_REGION"),
            home=Path(text("HOME", str(Path.home()))),
            idle_timeout_minutes=number("NBSTACK_IDLE_TIMEOUT_MINUTES", 60, 0, 7 * 24 * 60),
            max_lifetime_hours=number("NBSTACK_MAX_LIFETIME_HOURS", 0, 0, 24 * 366),
            idle_poll_seconds=number("NBSTACK_IDLE_POLL_SECONDS", 60, 1, 3600),
            cluster=text("NBSTACK_CLUSTER"),
            service=text("NBSTACK_SERVICE"),
            autoscaling_group=text("NBSTACK_AUTOSCALING_GROUP"),
            # Secrets are taken verbatim: a password may start or end with spaces.
            git_token=Secret(env.get("NBSTACK_GIT_TOKEN", "")),
            notebook_password=Secret(env.get("NBSTACK_NOTEBOOK_PASSWORD", "")),
            warehouse_password=Secret(env.get("NBSTACK_WAREHOUSE_PASSWORD", "")),
        )
        if errors:
            raise SettingsError("invalid container settings:\n  - " + "\n  - ".join(errors))
        return settings


def without_secrets(environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` for child processes that must not see any secret."""
    listed = {name for name in environ.get("JUPYTER_ENV_VARS_TO_UNSET", "").split(",") if name}
    drop = listed | set(SECRET_VARIABLES)
    return {key: value for key, value in environ.items() if key not in drop}
