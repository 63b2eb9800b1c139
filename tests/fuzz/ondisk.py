"""The one place that finds the shared test helpers.

The on-disk reader (btrfs_ondisk), the fixture builders and the runner live in
tests/ today and may move to tests/lib/: both directories go on sys.path, so
the plain module names resolve in either layout.
"""

import os
import sys

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

for _d in (os.path.join(TESTS_DIR, "lib"), TESTS_DIR):
    if os.path.isdir(_d) and _d not in sys.path:
        sys.path.append(_d)

import btrfs_ondisk as bo  # noqa: E402
import fixtures  # noqa: E402
import runner  # noqa: E402

__all__ = ["bo", "fixtures", "runner", "TESTS_DIR"]
