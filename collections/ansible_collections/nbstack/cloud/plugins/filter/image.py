# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which container image a person's service runs: one rule for preflight and the instance role.

up.yml's preflight checks, before anything changes, that the image the
instance role will put in the task definition is pushed; both take it from
here, so they cannot disagree. Documentation: image_repository.yml,
team_image_tag.yml and container_image.yml beside this file.
"""

from __future__ import annotations

#: The team's repository, <app>/notebook: the RepositoryName of the persistent template.
REPOSITORY_SUFFIX = "/notebook"
#: What a GPU instance type's image puts before the tag (image.yml pushes it so). A
#: prefix, not a suffix: the repository's lifecycle rules select each variant
#: by its first characters (gpu-c-*, c-*), and two rules must never select
#: the same image.
GPU_TAG_PREFIX = "gpu-"


def image_repository(app):
    """The name of the team's ECR repository, <app>/notebook."""
    return f"{app}{REPOSITORY_SUFFIX}"


def team_image_tag(tag, gpu, image="", gpu_image=""):
    """The tag in the team's repository that the service runs, or "" when a named image replaces it.

    `tag` is notebook_image_tag or this checkout's content tag; a GPU type
    runs its gpu- variant. notebook_image (CPU types) and notebook_gpu_image
    (GPU types) name another image, which is run as it is.
    """
    if gpu_image if gpu else image:
        return ""
    return f"{GPU_TAG_PREFIX if gpu else ''}{tag}"


def container_image(repository_uri, tag, gpu, image="", gpu_image=""):
    """The image reference the task definition gets: the named image, or <repository URI>:<team tag>."""
    named = gpu_image if gpu else image
    return named or f"{repository_uri}:{team_image_tag(tag, gpu)}"


class FilterModule:
    """The container image of a person's service."""

    def filters(self):
        return {
            "image_repository": image_repository,
            "team_image_tag": team_image_tag,
            "container_image": container_image,
        }
