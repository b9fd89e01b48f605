"""The local AWS emulator (moto in server mode) that tests and the demo talk to.

Playbooks reach it the way they would reach AWS: boto3 reads AWS_ENDPOINT_URL
and the dummy credentials from the environment. Nothing in the playbooks
knows it is there.
"""

from __future__ import annotations

import os
import socket
import urllib.request
from dataclasses import dataclass, field

from moto.server import ThreadedMotoServer

REGION = "eu-west-1"
# moto's fixed account; dummy credentials it accepts.
ACCOUNT_ID = "123456789012"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Emulator:
    """A running moto server on loopback."""

    port: int = field(default_factory=free_port)
    server: ThreadedMotoServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Emulator":
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
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
            env.pop(name, None)
        env.update(CREDENTIALS)
        env.update(
            {
                "AWS_ENDPOINT_URL": self.url,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
            }
        )
        return env
