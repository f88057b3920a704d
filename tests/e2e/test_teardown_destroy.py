"""`destroy` leaves nothing behind. Runs after test_local_env.py (pytest orders files by name)."""

from __future__ import annotations

import json
import subprocess

import pytest

pytestmark = pytest.mark.e2e


def _docker(*args: str) -> list[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.split()


def test_destroy_leaves_no_container_network_loop_device_volume_or_state(deployed):
    state = deployed.project / ".platform" / deployed.env
    volume_files = sorted((state / "volumes").glob("*.img"))
    assert volume_files, "the environment should have volumes to clean up"
    attached = subprocess.run(["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"], capture_output=True,
                              text=True, check=True).stdout
    assert all(str(f) in attached for f in volume_files)

    run = deployed.cli("destroy", deployed.env)
    assert run.rc == 0, run.stdout + run.stderr

    assert _docker("ps", "-aq", "--filter", f"label=platform-ctl.env={deployed.env}") == []
    assert _docker("network", "ls", "-q", "--filter", f"name=^platform-{deployed.env}$") == []
    loops = json.loads(subprocess.run(["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"],
                                      capture_output=True, text=True, check=True).stdout or '{"loopdevices": []}')
    backing = [d.get("back-file") or "" for d in loops.get("loopdevices", [])]
    assert not [b for b in backing if str(state) in b], backing
    assert not any(f.exists() for f in volume_files)
    assert not state.exists()
