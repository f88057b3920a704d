"""Remove what an interrupted test run left on this machine; scripts/test.sh runs it before pytest.

A run killed before its teardown (CI's time limit, a lost session) leaves the droplet containers of
the end-to-end environment `e2e` (the emulator's droplets) and of the local backend's environment
`small` behind, with their loop devices.
Those droplets are started with restart policy unless-stopped (as droplets should be), so the next
Docker daemon brings them back: a later run would then share the machine's two cores and its memory with
a whole platform it does not know about, and its own memory preflight would fail. Only the test
suite's own environments are touched: a `local` environment (or any other) is left as it is.
A Molecule scenario's instances and network (labelled owner=molecule, no restart policy) and
loop devices go too: the suite's scenarios start at create, with no destroy of an earlier run's.
"""

from __future__ import annotations

import json
import subprocess
import sys

import docker
from docker.errors import NotFound

from do_emulator.materialize import Materializer, data_dir_for
from platform_ctl.infra.local import LABEL_EMULATOR, LABEL_ENV

#: The local environments of the suite (tests/e2e/test_local_backend.py; before, `e2e` was one too).
LOCAL_ENVS = ("small", "e2e")
#: What Molecule's docker driver labels its instances and networks with.
MOLECULE_LABEL = "owner=molecule"
#: Where pytest's temporary directories are: the e2e project, its volume files among them.
PYTEST_TMP = "/tmp/pytest-of-"


def _loop_devices() -> list[dict[str, str]]:
    listed = subprocess.run(["losetup", "--json", "--list", "--output", "NAME,BACK-FILE"], capture_output=True,
                            text=True, check=False).stdout
    return json.loads(listed).get("loopdevices", []) if listed.strip() else []


def _emulator_instances(client: docker.DockerClient) -> set[str]:
    """Every emulator instance with a droplet, a network or a data directory on this machine."""
    names = {c.labels.get(LABEL_EMULATOR, "")
             for c in client.containers.list(all=True, filters={"label": LABEL_EMULATOR})}
    names |= {(n.attrs.get("Labels") or {}).get(LABEL_EMULATOR, "")
              for n in client.networks.list(filters={"label": LABEL_EMULATOR})}
    root = data_dir_for("x").parent
    if root.is_dir():
        names |= {d.name for d in root.iterdir() if d.is_dir()}
    return {n for n in names if n}


def main() -> int:
    client = docker.from_env(timeout=300)
    removed: list[str] = []
    # The emulator instances (the e2e environment's): the emulator's own teardown, as the tests call it.
    for name in sorted(_emulator_instances(client)):
        removed += Materializer.cleanup(name)
    for label in (*(f"{LABEL_ENV}={env}" for env in LOCAL_ENVS), MOLECULE_LABEL):
        for container in client.containers.list(all=True, filters={"label": label}):
            try:
                container.remove(force=True, v=True)
            except NotFound:
                continue
            removed.append(f"container {container.name}")
    networks = [n for env in LOCAL_ENVS for n in client.networks.list(names=[f"platform-{env}"])] \
        + client.networks.list(filters={"label": MOLECULE_LABEL})
    for network in networks:
        network.reload()
        if not network.containers:
            network.remove()
            removed.append(f"network {network.name}")
    for loop in _loop_devices():
        if (loop.get("back-file") or "").startswith(PYTEST_TMP):
            subprocess.run(["losetup", "-d", loop["name"]], check=False)
            removed.append(f"loop device {loop['name']} ({loop['back-file']})")
    for line in removed:
        print(f"  removed {line}")
    print(f"leftovers of an interrupted test run: {len(removed)} removed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
