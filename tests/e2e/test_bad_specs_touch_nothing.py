"""A bad spec stops `deploy` with one line naming file, key and what is allowed, and creates nothing.

The exact message of each bad spec is pinned by tests/unit/test_spec.py; this checks the command:
exit code 2, that one line on stderr, and no container, network, loop device, state directory,
vault or vault password left behind.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_env import EMULATOR

from platform_ctl.errors import SpecError
from platform_ctl.spec import load_spec

BAD = sorted((Path(__file__).resolve().parents[1] / "unit" / "specs" / "bad").glob("*.yml"))


MOLECULE_VOLUME = re.compile(r"/molecule-[^/]+/volumes/")


def _machine_state() -> tuple[list[str], list[str], list[str]]:
    """Containers, networks and loop devices of local environments, less those of the e2e environment's
    emulator and of the Molecule scenarios: the e2e deploy (tests/e2e/conftest.py starts it when
    collection ends) and a scenario (tests/molecule/conftest.py) may be running beside these tests.
    The emulator's droplets carry its label, its networks are named do-<name>-*, its volume files lie
    under its data directory; a Molecule instance has no platform-ctl label, its network is named
    molecule-*, its volume files lie in its ephemeral directory, named molecule-* by
    tests/molecule/conftest.py."""

    def out(*cmd: str) -> str:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout

    containers = set(out("docker", "ps", "-aq", "--filter", "label=platform-ctl.env").split())
    loops = out("losetup", "--list", "--noheadings", "-O", "NAME,BACK-FILE").splitlines()
    return (
        sorted(containers),
        sorted(n for n in out("docker", "network", "ls", "--format", "{{.Name}}").split()
               if not n.startswith((f"do-{EMULATOR}-", "molecule-"))),
        sorted(line for line in loops
               if f"/emulator/{EMULATOR}/volumes/" not in line and not MOLECULE_VOLUME.search(line)),
    )


def test_there_are_at_least_twelve_bad_specs():
    assert len(BAD) >= 12


@pytest.mark.parametrize("bad", BAD, ids=[p.stem for p in BAD])
def test_bad_spec_fails_deploy_with_one_line_and_touches_nothing(bad: Path, tmp_path: Path):
    project = tmp_path / "project"
    spec_path = project / "inventories" / "local" / "platform.yml"
    spec_path.parent.mkdir(parents=True)
    spec_path.write_bytes(bad.read_bytes())
    with pytest.raises(SpecError) as expected:
        load_spec(spec_path, env="local")
    before = _machine_state()

    env = {**os.environ, "PLATFORM_PROJECT_DIR": str(project), "PLATFORM_CONFIG_DIR": str(tmp_path / "config"),
           "COLUMNS": "1000"}
    done = subprocess.run([sys.executable, "-m", "platform_ctl", "deploy", "local"], capture_output=True,
                          text=True, env=env, timeout=120, check=False)

    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [f"error: {expected.value.message}"]
    assert _machine_state() == before
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == [
        "inventories", "inventories/local", "inventories/local/platform.yml",
    ]
    assert not (tmp_path / "config").exists()
