"""The root module applied by platform-ctl through OpenTofu and the real provider, against the emulator.

One environment per module, changed step by step in file order: apply, plan again, scale the
workers, flip allow_volume_deletion, destroy.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import pytest
from do_harness import TOKEN, EmulatorProcess, Project, do_spec, make_project

from platform_ctl.environment import Environment
from platform_ctl.events import Event
from platform_ctl.infra import Host
from platform_ctl.paths import Project as PlatformProject

ENV = "do-it"
VPC = "10.44.0.0/24"


@dataclass
class Applied:
    project: Project
    emulator: EmulatorProcess
    hosts: list[Host]
    events: list[Event] = field(default_factory=list)

    def environment(self) -> Environment:
        return Environment.load(PlatformProject(self.project.root), ENV)


@pytest.fixture(scope="module")
def applied(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Applied]:
    project = make_project(tmp_path_factory.mktemp("project"), do_spec(ENV, emulator.url, VPC))
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
        env = Environment.load(PlatformProject(project.root), ENV)
        events: list[Event] = []
        hosts = env.backend.apply(env.spec, env.access(create=True), events.append)
        yield Applied(project, emulator, hosts, events)


def _by_name(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in items}


def _droplet_hosts(applied: Applied) -> list[str]:
    """The host names of the emulator's droplets (a droplet is named by its FQDN)."""
    return [d["name"].split(".")[0] for d in applied.emulator.state()["droplets"]]


def test_apply_creates_the_droplets_and_volumes_of_the_spec(applied: Applied) -> None:
    env = applied.environment()
    state = applied.emulator.state()
    droplets = _by_name(state["droplets"])
    plans = {p.fqdn: p for p in env.spec.hosts()}
    assert sorted(droplets) == sorted(plans)
    for fqdn, plan in plans.items():
        droplet = droplets[fqdn]
        group = plan.groups[0]
        assert droplet["size_slug"] == plan.size.slug, fqdn
        assert droplet["region"]["slug"] == "fra1"
        assert droplet["status"] == "active"
        assert {"platform", f"platform-{ENV}", f"platform-{ENV}-{group}"} <= set(droplet["tags"]), fqdn
    volumes = _by_name(state["volumes"])
    planned_volumes = {v.name: (p.fqdn, v.size_gb) for p in env.spec.hosts() for v in p.volumes}
    assert sorted(volumes) == sorted(planned_volumes)
    for name, (fqdn, size_gb) in planned_volumes.items():
        assert volumes[name]["size_gigabytes"] == size_gb
        assert volumes[name]["droplet_ids"] == [droplets[fqdn]["id"]], f"{name} is attached to its host"
        assert droplets[fqdn]["volume_ids"] == [volumes[name]["id"]]
    vpcs = [v for v in state["vpcs"] if v["ip_range"] == VPC]
    assert len(vpcs) == 1
    assert {d["vpc_uuid"] for d in droplets.values()} == {vpcs[0]["id"]}
    # The inventory's view: every host with the addresses the API reported.
    assert sorted(h.name for h in applied.hosts) == sorted(p.name for p in env.spec.hosts())
    assert all(h.private_ip.startswith("10.44.0.") for h in applied.hosts)


def _rules(state: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    """(protocol, ports, source, target tag) of every inbound rule of the environment's firewalls."""
    rules = set()
    for firewall in state["firewalls"]:
        for rule in firewall["inbound_rules"]:
            sources = rule["sources"].get("addresses", []) + [f"tag:{t}" for t in rule["sources"].get("tags", [])]
            for source in sources:
                for tag in firewall["tags"]:
                    rules.add((rule["protocol"], rule.get("ports", ""), source, tag))
    return rules


def test_firewalls_open_only_the_port_matrix_inside_the_vpc(applied: Applied) -> None:
    rules = _rules(applied.emulator.state())
    every = f"platform-{ENV}"
    assert ("tcp", "22", "203.0.113.0/24", every) in rules
    assert ("tcp", "22", VPC, every) in rules
    for port in ("9000", "9001"):
        assert ("tcp", port, VPC, f"platform-{ENV}-minio") in rules
    assert ("tcp", "5432", VPC, f"platform-{ENV}-postgres") in rules
    public = {(ports, tag) for proto, ports, source, tag in rules if source in ("0.0.0.0/0", "::/0")}
    # Only the base role's public ports (base_firewall_public_ports): Trino HTTPS on the coordinator.
    assert public == {("8443", f"platform-{ENV}-trino_coordinator")}
    assert {source for proto, ports, source, tag in rules if ports == "8443" and tag.endswith("trino_coordinator")} \
        == {VPC, "0.0.0.0/0", "::/0"}
    # node_exporter (base_firewall_service_rules): every droplet admits 9100 from the monitoring
    # hosts' tag (the spec has one), and from nothing else.
    assert {(proto, source, tag) for proto, ports, source, tag in rules if ports == "9100"} \
        == {("tcp", f"tag:platform-{ENV}-monitoring", every)}
    # Nothing but SSH is reachable from the admin networks, and no other port from anywhere outside.
    outside = {(ports, source) for proto, ports, source, tag in rules
               if source not in (VPC, "0.0.0.0/0", "::/0") and not source.startswith("tag:")}
    assert outside == {("22", "203.0.113.0/24")}


def test_the_project_holds_every_droplet_and_volume(applied: Applied) -> None:
    state = applied.emulator.state()
    projects = [p for p in state["projects"] if p["name"] == f"platform-{ENV}"]
    assert len(projects) == 1
    urns = set(projects[0]["resources"])
    expected = {f"do:droplet:{d['id']}" for d in state["droplets"]} | {f"do:volume:{v['id']}" for v in state["volumes"]}
    assert urns == expected


def _power(applied: Applied, droplet_id: int, action: str) -> None:
    """A droplet action through the API, as a user's `doctl compute droplet-action` would ask it."""
    request = urllib.request.Request(f"{applied.emulator.url}/v2/droplets/{droplet_id}/actions", method="POST",
                                     data=json.dumps({"type": action}).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201


def test_status_reads_each_droplets_power_state_from_the_api(applied: Applied) -> None:
    """`status` shows a droplet powered off through the API as stopped (the OpenTofu outputs still list it),
    and running again once powered on; without a token it says which variable to set."""
    pg1 = next(d for d in applied.emulator.state()["droplets"] if d["name"].startswith("pg1."))
    _power(applied, pg1["id"], "power_off")
    try:
        with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
            env = applied.environment()
            states = {h.name: h.state for h in env.backend.status(env.spec)}
            # The emulator's droplets answer no SSH here (not materialised), so ssh is false for all.
            shown = applied.project.cli("status", ENV, "--json")
    finally:
        _power(applied, pg1["id"], "power_on")
    assert states.pop("pg1") == "stopped"
    assert set(states.values()) == {"running"}, states
    assert shown.returncode == 1, shown.stdout + shown.stderr
    hosts = {h["name"]: h for h in json.loads(shown.stdout)["hosts"]}
    assert hosts["pg1"]["state"] == "stopped"
    assert hosts["minio1"]["state"] == "running"
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
        assert {h.state for h in env.backend.status(env.spec)} == {"running"}
    refused = applied.project.cli("status", ENV, token=None)
    assert refused.returncode == 3, refused.stdout + refused.stderr  # PreflightError
    assert "DIGITALOCEAN_TOKEN is not set" in refused.stderr


def test_a_second_plan_shows_no_changes(applied: Applied) -> None:
    # The base firewall's rule from a tag is part of it: the provider sends and reads source_tags as a
    # set, so the order the API echoes them in cannot show up as a change.
    assert ("tcp", "9100", f"tag:platform-{ENV}-monitoring", f"platform-{ENV}") in _rules(applied.emulator.state())
    env = applied.environment()
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
        summary = env.backend.plan(env.spec, env.access(), lambda _e: None)
    assert summary.empty, summary.changes


def test_one_more_worker_plans_exactly_one_new_droplet_and_no_replacement(applied: Applied) -> None:
    spec = applied.project.spec()
    spec["groups"]["trino_worker"]["count"] = 2
    applied.project.write_spec(spec)
    try:
        env = applied.environment()
        with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
            summary = env.backend.plan(env.spec, env.access(), lambda _e: None)
    finally:
        spec["groups"]["trino_worker"]["count"] = 1
        applied.project.write_spec(spec)
    droplet_changes = [(a, addr) for a, addr in summary.changes if ".digitalocean_droplet." in addr]
    assert droplet_changes == [("create", droplet_changes[0][1])]
    assert droplet_changes[0][1].endswith('["trino-worker2"]')
    assert not [c for c in summary.changes if c[0] in ("delete", "replace")], summary.changes
    assert summary.remove == 0


def test_scale_in_removes_exactly_the_leaving_workers_droplet(applied: Applied) -> None:
    """What `scale-in` applies on DigitalOcean (``DigitalOceanBackend.retire``): 2 workers, then 1."""
    spec = applied.project.spec()
    spec["groups"]["trino_worker"]["count"] = 2
    applied.project.write_spec(spec)
    try:
        with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
            env = applied.environment()
            env.backend.apply(env.spec, env.access(), lambda _e: None)
            assert "trino-worker2" in _droplet_hosts(applied)
            spec["groups"]["trino_worker"]["count"] = 1
            applied.project.write_spec(spec)
            env = applied.environment()
            summary = env.backend.plan(env.spec, env.access(), lambda _e: None)
            deleted = [addr for action, addr in summary.changes if action in ("delete", "replace")]
            hosts = env.backend.retire(env.spec, env.access(), ["trino-worker2"], lambda _e: None)
    finally:
        spec["groups"]["trino_worker"]["count"] = 1
        applied.project.write_spec(spec)
    assert deleted == ['module.droplet_group["trino_worker"].digitalocean_droplet.host["trino-worker2"]'], \
        summary.changes
    assert summary.remove == 1
    assert "trino-worker2" not in _droplet_hosts(applied)
    assert "trino-worker1" in _droplet_hosts(applied)
    assert [h.name for h in hosts if "trino_worker" in h.groups] == ["trino-worker1"]


def test_allowing_volume_deletion_moves_volumes_in_state_without_touching_them(applied: Applied) -> None:
    before = len(applied.emulator.requests())
    spec = applied.project.spec()
    for allow in (True, False):
        spec["allow_volume_deletion"] = allow
        applied.project.write_spec(spec)
        env = applied.environment()
        events: list[Event] = []
        with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
            env.backend.apply(env.spec, env.access(), events.append)
        moved = [e.message for e in events if "state moved" in e.message]
        assert len(moved) == 5, moved
    volume_writes = [r for r in applied.emulator.requests()[before:]
                     if "/volumes" in r["path"] and r["method"] in ("POST", "DELETE", "PUT")]
    assert volume_writes == []


def test_destroy_removes_everything_but_the_protected_volumes(applied: Applied) -> None:
    env = applied.environment()
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
        kept = env.backend.destroy(env.spec, lambda _e: None, with_data=True)
    planned = sorted(v.name for p in env.spec.hosts() for v in p.volumes)
    assert kept == planned
    state = applied.emulator.state()
    assert state["droplets"] == []
    assert state["firewalls"] == []
    assert state["keys"] == []
    assert [p["name"] for p in state["projects"] if not p.get("is_default")] == []
    assert [v for v in state["vpcs"] if v["ip_range"] == VPC] == []
    volumes = _by_name(state["volumes"])
    assert sorted(volumes) == planned
    assert all(v["droplet_ids"] == [] for v in volumes.values())


def test_a_new_deploy_reattaches_the_kept_volumes(applied: Applied) -> None:
    kept = {v["name"]: v["id"] for v in applied.emulator.state()["volumes"]}
    before = len(applied.emulator.requests())
    env = applied.environment()
    events: list[Event] = []
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
        env.backend.apply(env.spec, env.access(), events.append)
    imported = [e.message for e in events if "imported, its data is reattached" in e.message]
    assert len(imported) == len(kept)
    state = applied.emulator.state()
    volumes = {v["name"]: v for v in state["volumes"]}
    assert {name: v["id"] for name, v in volumes.items()} == kept
    droplets = {d["id"]: d["name"] for d in state["droplets"]}
    for name, volume in volumes.items():
        host = name.removeprefix(f"{ENV}-").removesuffix("-data")
        assert [droplets[i] for i in volume["droplet_ids"]] == [f"{host}.{ENV}.platform.internal"]
    creates = [r for r in applied.emulator.requests()[before:]
               if r["method"] == "POST" and r["path"].endswith("volumes")]
    assert creates == []
    assert not (env.state_dir / "volumes" / "retained.json").exists()
