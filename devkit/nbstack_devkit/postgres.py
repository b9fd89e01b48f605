"""A throwaway PostgreSQL cluster standing in for the team's warehouse.

Debian's PostgreSQL binaries (NBSTACK_PG_BIN, default PostgreSQL 15's) in a
temporary directory, listening on loopback TCP with password authentication
(what the container's ~/.pgpass must get right) and on a private socket for
the set-up. The image tests and the demo use it; whoever starts one stops it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .waits import free_port

PG_BIN = Path(os.environ.get("NBSTACK_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _unprivileged() -> list[str]:
    """Command prefix that drops root (initdb and postgres refuse to run as root)."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]


@dataclass
class PostgresCluster:
    """A throwaway PostgreSQL cluster listening on loopback TCP and a private socket."""

    port: int = 0
    superuser: str = "postgres"
    directory: Path | None = None

    def start(self) -> PostgresCluster:
        self.port = self.port or free_port()
        # Directly under /tmp: pytest's own tmp dirs are 0700 root, which `nobody` cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="nbstack-pg-"))
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.directory, nobody.pw_uid, nobody.pw_gid)
        data = self.directory / "data"
        run = _unprivileged()
        subprocess.run(
            [*run, str(PG_BIN / "initdb"), "-D", str(data), "-U", self.superuser, "--auth-local=trust",
             "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"],
            check=True, capture_output=True,
        )
        options = f"-k {self.directory} -p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            [*run, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(self.directory / "log"), "-o", options,
             "-w", "-t", "60", "start"],
            check=True, capture_output=True,
        )
        return self

    def connect(self, database: str = "postgres") -> Any:
        """A superuser connection over the private socket (trusted there, so no password)."""
        import psycopg2  # only where a warehouse is started: the demo runs without PostgreSQL too

        return psycopg2.connect(host=str(self.directory), port=self.port, user=self.superuser, dbname=database)

    def execute(self, *statements: str) -> None:
        """Run statements as the superuser, each in its own transaction (CREATE DATABASE needs that)."""
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.directory is None:
            return
        subprocess.run(
            [*_unprivileged(), str(PG_BIN / "pg_ctl"), "-D", str(self.directory / "data"), "-m", "immediate",
             "-w", "stop"],
            check=False, capture_output=True,
        )
        shutil.rmtree(self.directory, ignore_errors=True)
