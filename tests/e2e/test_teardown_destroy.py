"""`destroy` of the shared environment asks for the typed name, then leaves nothing behind: no droplet or
volume in the DigitalOcean API, no droplet container, no loop device, no state. Runs after every
other test of the environment (pytest orders files by name).
"""

from __future__ import annotations

import json
import subprocess

import pytest
from e2e_env import EMULATOR

pytestmark = pytest.mark.e2e


def _containers() -> list[str]:
    return subprocess.run(["docker", "ps", "-aq", "--filter", f"label=platform-ctl.emulator={EMULATOR}"],
                          capture_output=True, text=True, check=True).stdout.split()


def _loops() -> list[str]:
    loops = json.loads(subprocess.run(["losetup", "--list", "--json", "-O", "NAME,BACK-FILE"], capture_output=True,
                                      text=True, check=True).stdout or '{"loopdevices": []}')
    return [d.get("back-file") or "" for d in loops.get("loopdevices", [])]


def test_destroy_needs_the_typed_name_then_leaves_no_droplet_volume_container_loop_or_state(deployed):
    volumes = deployed.api_request("GET", "/v2/volumes?per_page=200")["volumes"]
    assert volumes, "the environment should have volumes to clean up"
    volume_files = [line for line in _loops() if f"/emulator/{EMULATOR}/volumes/" in line]
    assert len(volume_files) == len(volumes)

    refused = deployed.cli("destroy", deployed.env)
    assert refused.rc == 2
    assert "--with-data" in refused.stderr
    wrong = deployed.cli("destroy", deployed.env, "--with-data", "--confirm", "prod")
    assert wrong.rc == 2
    assert "nothing destroyed" in wrong.stderr
    assert len(_containers()) == len(deployed.hosts_now())

    run = deployed.cli("destroy", deployed.env, "--with-data", "--confirm", deployed.env)
    assert run.rc == 0, run.stdout + run.stderr

    assert deployed.api_request("GET", "/v2/droplets?per_page=200")["droplets"] == []
    assert deployed.api_request("GET", "/v2/volumes?per_page=200")["volumes"] == []
    assert _containers() == []
    assert not [b for b in _loops() if f"/emulator/{EMULATOR}/volumes/" in b]
    assert not deployed.state.exists()
