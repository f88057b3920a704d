"""Two lanes for `scripts/test.sh` (pytest-xdist, `-n 2 --dist loadgroup`).

The suite is mostly waiting on Ansible and on services starting in containers: one lane leaves
about half of this machine's two cores idle. So the Molecule scenarios (each on its own hosts,
network and loop devices) run in one lane beside the platform lane: the DigitalOcean rehearsal,
then the end-to-end suite on its one shared environment. Order within a lane is collection order
(``testpaths``): unit tests first in the roles lane, the rehearsal before the e2e deploy in the
platform lane (both environments would not fit in memory at once).

Without xdist (plain `pytest`) the marks do nothing and everything runs in collection order.
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
PLATFORM_LANE = ("integration", "e2e")


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook turns the mark into the test's group
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        top = item.path.relative_to(TESTS).parts[0]
        item.add_marker(pytest.mark.xdist_group("platform" if top in PLATFORM_LANE else "roles"))
