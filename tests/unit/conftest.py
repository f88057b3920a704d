"""Fixtures shared by the unit tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from platform_ctl.paths import COLLECTION_ROOT, Project

#: The shipped local environment's spec.
LOCAL_SPEC = COLLECTION_ROOT / "inventories/local/platform.yml"


@pytest.fixture
def local_project(tmp_path: Path) -> Project:
    """A project in tmp_path holding environment `local` with the shipped local spec."""
    project = Project(tmp_path / "project")
    env_dir = project.env_dir("local")
    env_dir.mkdir(parents=True)
    shutil.copy(LOCAL_SPEC, env_dir / "platform.yml")
    return project


@pytest.fixture(scope="session")
def promtool() -> Path:
    """The pinned promtool (Prometheus 3.16.0), built into the artifact cache when absent.

    No skip when it cannot be built: a machine without Go or the module proxy fails these tests,
    as CI on a fresh machine must build it (scripts/setup.sh installs Go's requirements).
    """
    from platform_ctl.artifacts import ensure
    from platform_ctl.artifacts import promtool as promtool_artifact

    return ensure(promtool_artifact()).path
