"""Stand-in for the get-pip.py script ansible-test downloads, for machines without the internet.

`ansible-test sanity` makes a virtual environment per test and bootstraps
pip into it by running get-pip.py from ci-files.testing.ansible.com, which
machines that reach only the package index cannot fetch. It first looks for
a cached copy (~/.ansible/test/cache/get_pip_<version>.py); `make sanity`
puts this file there. It does the same job with the interpreter's own
ensurepip, then installs the packages ansible-test asked for (pip's own
pinned version among them) from the configured package index.
"""

from __future__ import annotations

import subprocess
import sys

# get-pip.py options that pip's own command line does not know.
GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main() -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True, stdout=subprocess.DEVNULL)
    arguments = [argument for argument in sys.argv[1:] if argument not in GET_PIP_ONLY]
    return subprocess.run([sys.executable, "-m", "pip", "install", *arguments], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
