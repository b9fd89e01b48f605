# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The content tag of the notebook image built from a build context."""

from __future__ import annotations

DOCUMENTATION = r"""
name: image_content_tag
version_added: 0.1.0
short_description: Tag the notebook image by what it is built from
description:
  - Hashes the build context's Dockerfile and exactly the paths its C(COPY)
    and C(ADD) instructions take from the context (directories recursively,
    without Python byte-code caches), with each file's executable bit.
  - Returns C(c-) and the first 12 hex digits of that sha256, so the tag
    names one version of the image. C(image.yml) pushes under it and
    C(up.yml) runs it, without talking to Docker.
options:
  _terms:
    description: Build context directories, each holding a Dockerfile.
    type: list
    elements: path
    required: true
"""

EXAMPLES = r"""
- name: Work out the content tag of the image
  ansible.builtin.set_fact:
    image_content_tag: "{{ lookup('nbstack.cloud.image_content_tag', 'files/image') }}"
"""

RETURN = r"""
_raw:
  description: One tag per build context, like C(c-0123456789ab).
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.nbstack.cloud.plugins.plugin_utils.image_context import ContextError, content_tag


class LookupModule(LookupBase):
    """Content tags of build contexts."""

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        tags = []
        for term in terms:
            try:
                tags.append(content_tag(term))
            except (ContextError, OSError) as error:
                raise AnsibleLookupError(f"Cannot tag the image built from {term}: {error}") from error
        return tags
