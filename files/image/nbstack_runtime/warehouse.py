"""Warehouse access without typing a password: ~/.pgpass, a libpq service, an AWS profile.

libpq (psycopg2, psql, SQLAlchemy) reads ~/.pgpass when a connection names no
password, and ~/.pg_service.conf for `service=warehouse`. When the warehouse
lives in another account, the `warehouse` AWS profile assumes its role with
the task's own credentials (ECS container credentials).
"""

from __future__ import annotations

import configparser
import io
import logging

from .privatefiles import write_private
from .settings import Settings

log = logging.getLogger("nbstack.warehouse")

SERVICE_NAME = "warehouse"
AWS_PROFILE = "warehouse"


def _pgpass_field(value: str) -> str:
    """Escape a .pgpass field (backslash and colon are special)."""
    return value.replace("\\", "\\\\").replace(":", "\\:")


def pgpass_line(settings: Settings) -> str:
    fields = (
        settings.warehouse_host,
        str(settings.warehouse_port),
        settings.warehouse_database or "*",
        settings.warehouse_user or "*",
        settings.warehouse_password.value,
    )
    return ":".join(_pgpass_field(f) if f != "*" else f for f in fields) + "\n"


def service_file(settings: Settings) -> str:
    lines = [f"[{SERVICE_NAME}]", f"host={settings.warehouse_host}", f"port={settings.warehouse_port}"]
    if settings.warehouse_database:
        lines.append(f"dbname={settings.warehouse_database}")
    if settings.warehouse_user:
        lines.append(f"user={settings.warehouse_user}")
    return "\n".join(lines) + "\n"


def aws_config(settings: Settings, existing: str = "") -> str:
    """~/.aws/config with the warehouse profile added (other profiles kept)."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(existing)
    section = f"profile {AWS_PROFILE}"
    parser[section] = {
        "role_arn": settings.warehouse_role_arn,
        "credential_source": "EcsContainer",
        "role_session_name": f"nbstack-{settings.prefix}",
    }
    if settings.aws_region:
        parser[section]["region"] = settings.aws_region
    out = io.StringIO()
    parser.write(out)
    return out.getvalue()


def configure(settings: Settings) -> list[str]:
    """Write whatever the settings allow; return the files written."""
    written: list[str] = []
    if not settings.warehouse_host:
        log.info("NBSTACK_WAREHOUSE_HOST is empty: no warehouse configuration")
    else:
        write_private(settings.home / ".pg_service.conf", service_file(settings))
        written.append(".pg_service.conf")
        if settings.warehouse_password:
            write_private(settings.home / ".pgpass", pgpass_line(settings))
            written.append(".pgpass")
        else:
            log.warning("NBSTACK_WAREHOUSE_PASSWORD is empty: no ~/.pgpass written")
    if settings.warehouse_role_arn:
        config_path = settings.home / ".aws" / "config"
        existing = config_path.read_text() if config_path.exists() else ""
        write_private(config_path, aws_config(settings, existing))
        written.append(".aws/config")
    log.info("warehouse files written: %s", ", ".join(written) or "none")
    return written
