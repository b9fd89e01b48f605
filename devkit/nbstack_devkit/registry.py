"""A stand-in for the Docker client whose push puts an image into the emulator's ECR.

No Docker engine runs on these machines or in CI, so `docker build` cannot
work here. The README's order is still the one the tests follow: image.yml
once for the team (it creates the network and the persistent stack, with the
repository, on a new account), then up.yml. This `docker`, first on PATH
while image.yml runs, accepts `login` and `build` without doing anything and
turns `push <repository URI>:<tag>` into ECR's PutImage of a small manifest
(what a push leaves in ECR for up.yml's preflight to find). The playbook,
the stacks and ECR's answers are real; the image content is not (the image
tests run files/image's code for real, without Docker).
"""

from __future__ import annotations

import stat
import sys
from pathlib import Path

SCRIPT = """
import hashlib, json, sys
import boto3

def main(argv):
    if argv[:1] in (["login"], ["build"]):
        if argv[:1] == ["login"]:
            sys.stdin.read()
        return 0
    if argv[:1] == ["push"] and len(argv) == 2:
        reference = argv[1]
        repository, _colon, tag = reference.split("/", 1)[1].rpartition(":")
        digest = "sha256:" + hashlib.sha256(tag.encode()).hexdigest()
        config = {"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(tag), "digest": digest}
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": config, "layers": []}
        ecr = boto3.client("ecr")
        try:
            ecr.put_image(repositoryName=repository, imageManifest=json.dumps(manifest), imageTag=tag)
        except ecr.exceptions.ImageAlreadyExistsException:
            pass
        print(f"{tag}: digest: {digest}")
        return 0
    sys.stderr.write(f"docker stand-in: {' '.join(argv)} is not something it does\\n")
    return 1

sys.exit(main(sys.argv[1:]))
"""


def install_docker_standin(folder: Path) -> Path:
    """Write the stand-in `docker` into `folder` (to be put first on PATH); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    executable = folder / "docker"
    executable.write_text(f"#!{sys.executable}\n{SCRIPT}")
    executable.chmod(executable.stat().st_mode | stat.S_IXUSR)
    return executable
