"""The local AWS emulator (moto in server mode) that the tests, the benches and the demo talk to.

Playbooks reach it the way they would reach AWS: boto3 reads AWS_ENDPOINT_URL
and the dummy credentials from the environment (`Emulator.environ`). Nothing
in the playbooks knows it is there. Code in this process asks the emulator
for its boto3 clients (`Emulator.client`), so that the endpoint, the
credentials and the region are written down once.
"""

from __future__ import annotations

import logging
import os
import urllib.request
import warnings
from dataclasses import dataclass, field
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from .waits import free_port

REGION = "eu-west-1"
# moto's fixed account; dummy credentials it accepts.
ACCOUNT_ID = "123456789012"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: Variables that would make boto3 prefer a real account's credentials.
REAL_ACCOUNT_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


@dataclass
class Emulator:
    """A running moto server on loopback."""

    port: int = field(default_factory=free_port)
    server: ThreadedMotoServer | None = None
    _session: boto3.session.Session | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Emulator:
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def reset(self) -> None:
        """Forget every resource, as a fresh account."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30):
            pass

    def environ(self, base: dict[str, str] | None = None) -> dict[str, str]:
        """An environment in which boto3 (and so Ansible) talks to this emulator."""
        env = dict(os.environ if base is None else base)
        for name in REAL_ACCOUNT_VARIABLES:
            env.pop(name, None)
        env.update(CREDENTIALS)
        env.update({"AWS_ENDPOINT_URL": self.url, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION})
        return env

    def client(self, service: str) -> Any:
        """A boto3 client of `service` bound to this emulator, whatever this process's environment says.

        One session per emulator: building a session loads botocore's data,
        clients are cheap after that.
        """
        if self._session is None:
            self._session = boto3.session.Session(
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=REGION,
            )
        return self._session.client(service, endpoint_url=self.url)


class Clients:
    """The emulator's clients as attributes (`aws.cloudformation`, `aws.service_quotas`), each made once.

    What the tests' assertions read: short to write, one client per service.
    """

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        if service not in self._clients:
            self._clients[service] = self._emulator.client(service.replace("_", "-"))
        return self._clients[service]


def quiet() -> None:
    """Keep the emulator's request log and its warnings about skipped template resources out of a report.

    A person running the demo or a bench needs neither; the tests keep them
    (pytest captures them and shows them on a failure).
    """
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    logging.getLogger("moto").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module="moto")
    warnings.filterwarnings("ignore", message="Tried to parse")
