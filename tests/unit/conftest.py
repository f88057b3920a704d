"""Fixtures shared by the unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The pinned promtool (Prometheus 3.16.0), built into the artifact cache when absent.

    No skip when it cannot be built: a machine without Go or the module proxy fails these tests,
    as CI on a fresh machine must build it (scripts/setup.sh installs Go's requirements).
    """
    from platform_ctl.artifacts import ensure
    from platform_ctl.artifacts import promtool as promtool_artifact

    return ensure(promtool_artifact()).path
