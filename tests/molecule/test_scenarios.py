"""Every Molecule scenario under molecule/ passes `molecule test` (converge, idempotence, verify)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (REPO / "molecule").glob("*/molecule.yml"))

pytestmark = pytest.mark.molecule


def test_every_role_has_a_scenario():
    roles = sorted(p.name for p in (REPO / "roles").iterdir() if p.is_dir() and not p.name.startswith("_"))
    assert roles, "no roles found"
    assert set(roles) <= set(SCENARIOS), f"roles without a Molecule scenario: {set(roles) - set(SCENARIOS)}"


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "ANSIBLE_FORCE_COLOR": "0", "PY_COLORS": "0"}
    done = subprocess.run(["molecule", "test", "-s", scenario], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"molecule test -s {scenario} failed:\n{output[-6000:]}"
    assert "idempotence" in output.lower()
