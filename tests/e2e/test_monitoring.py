"""Observability on the shared e2e environment: every target up, alerts that fire and resolve.

Prometheus is read through platform_ctl.monitoring (SSH to the monitoring host, then its private
address), the path `platform-ctl status` takes. Runs after test_minio_faults.py (pytest orders
files by name): alerts of that test's hosts may still be resolving, so every assertion here names
its host.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from e2e_support import wait_for

from platform_ctl.environment import Environment
from platform_ctl.monitoring import Monitoring, connect
from platform_ctl.paths import Project
from platform_ctl.promql import dashboard_expressions, rule_expressions, substitute_grafana_variables

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
#: Scrape job -> the platform groups whose hosts it scrapes (roles/prometheus).
JOB_GROUPS = {
    "node": None,  # every host
    "postgres": ("postgres",),
    "minio": ("minio",),
    "minio_node": ("minio",),
    "trino": ("trino_coordinator", "trino_worker"),
    "prometheus": ("monitoring",),
    "alertmanager": ("monitoring",),
    "docker": ("docker",),
}
#: HostDown and the MinIO node-offline alert: `for` 1m (roles/prometheus/files/rules); the role's
#: scrape and rule evaluation intervals (roles/prometheus/defaults).
ALERT_FOR = 60
SCRAPE_INTERVAL = 15
EVALUATION_INTERVAL = 15
#: How long MinIO serves `minio_cluster_nodes_offline_total` from its cache.
MINIO_NODE_HEALTH_CACHE = 60
#: The failed scrape of a stopped host (its address stops answering ARP: about 3 s) plus this
#: test's polling (every 2 s, an SSH round trip each).
SLACK = 10
STOPPED = "minio4"


@pytest.fixture(scope="module")
def monitoring(deployed) -> Monitoring:
    env = Environment.load(Project(deployed.project), deployed.env)
    return connect(env)


def _inventory(deployed) -> dict:
    """The inventory deploy generated: hosts and the groups they are in."""
    path = deployed.project / ".platform" / deployed.env / "inventory" / "hosts.yml"
    return yaml.safe_load(path.read_text())["all"]


def test_every_target_is_up_and_the_count_is_what_the_inventory_implies(deployed, monitoring: Monitoring):
    inventory = _inventory(deployed)
    groups = {group: sorted(child["hosts"]) for group, child in inventory["children"].items()}
    expected = {
        job: sorted(inventory["hosts"] if wanted is None else [h for g in wanted for h in groups.get(g, [])])
        for job, wanted in JOB_GROUPS.items()
    }

    def all_up() -> bool:
        targets = monitoring.targets()
        return all(t.up for t in targets) and len(targets) == sum(map(len, expected.values()))

    wait_for(all_up, 120, "every target up")
    targets = monitoring.targets()
    found = {job: sorted(t.host for t in targets if t.job == job) for job in expected}
    assert found == expected
    # The same count from the spec: a node target per host, plus one per exporter or service.
    counts = {group: g["count"] for group, g in deployed.spec["groups"].items()}
    docker_groups = ["apps", *deployed.spec.get("docker", {}).get("extra_groups", [])]
    assert len(targets) == sum(counts.values()) + counts["postgres"] + 2 * counts["minio"] \
        + counts["trino_coordinator"] + counts["trino_worker"] + 2 * counts["monitoring"] \
        + sum(counts[g] for g in docker_groups)
    print(f"\n{len(targets)} targets up: " + ", ".join(f"{job} {len(hosts)}" for job, hosts in found.items()))


def test_node_exporter_answers_the_monitoring_host_only(deployed):
    env = Environment.load(Project(deployed.project), deployed.env)
    hosts = {h.name: h for h in env.backend.hosts(env.spec)}
    target = hosts["pg1"].private_ip

    def curl_from(host: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["docker", "exec", f"platform-{deployed.env}-{host}", "curl", "-sS", "--max-time", "5",
                               "-o", "/dev/null", "-w", "%{http_code}", f"http://{target}:9100/metrics"],
                              capture_output=True, text=True, timeout=30, check=False)

    allowed = curl_from("mon1")
    assert allowed.returncode == 0, allowed
    assert allowed.stdout == "200", allowed
    for outsider in ("minio1", "trino-worker1"):
        refused = curl_from(outsider)
        assert refused.returncode != 0, f"{outsider} reached node_exporter on pg1: {refused.stdout}"
        assert refused.stdout == "000", refused


def test_promtool_accepts_the_configuration_on_the_host(deployed):
    checked = subprocess.run(["docker", "exec", f"platform-{deployed.env}-mon1", "promtool", "check", "config",
                              "/etc/prometheus/prometheus.yml"], capture_output=True, text=True, timeout=60,
                             check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout


def _firing(monitoring: Monitoring, host: str) -> set[str]:
    return {a.name for a in monitoring.alerts() if a.state == "firing" and a.host == host}


def test_a_stopped_minio_host_fires_host_down_and_minio_offline_then_resolves(deployed, monitoring: Monitoring):
    container = f"platform-{deployed.env}-{STOPPED}"
    wait_for(lambda: not _firing(monitoring, STOPPED), 300, f"no alert firing for {STOPPED} before the test")
    subprocess.run(["docker", "stop", container], check=True, capture_output=True, timeout=120)
    stopped = time.monotonic()
    try:
        seen: dict[str, float] = {}

        def both_fire() -> bool:
            for name in _firing(monitoring, STOPPED) | _cluster_alerts(monitoring):
                seen.setdefault(name, time.monotonic() - stopped)
            return {"HostDown", "MinIONodeOffline"} <= set(seen)

        wait_for(both_fire, ALERT_FOR + 4 * SCRAPE_INTERVAL + 60, f"HostDown and MinIONodeOffline for {STOPPED}")
        print(f"\nfiring after the stop: {', '.join(f'{n} {s:.0f}s' for n, s in sorted(seen.items()))}")
        # The rule's `for`, plus one scrape interval until the host is scraped and found down, plus
        # one evaluation interval until a rule evaluation sees that sample.
        bound = ALERT_FOR + SCRAPE_INTERVAL + EVALUATION_INTERVAL + SLACK
        assert seen["HostDown"] <= bound, seen
        # The offline count comes from the surviving MinIO nodes, which serve their node-health group
        # from a cache refreshed at most once a minute (getNodeHealthMetrics in MinIO's
        # cmd/metrics-v2.go): up to that much later (measured here 2026-11-26: 101 s and 121 s).
        assert seen["MinIONodeOffline"] <= bound + MINIO_NODE_HEALTH_CACHE, seen
        _status_and_backup_with_the_host_down(deployed)
    finally:
        subprocess.run(["docker", "start", container], check=True, capture_output=True, timeout=120)
    started = time.monotonic()
    wait_for(lambda: not ({"HostDown"} & _firing(monitoring, STOPPED)) and "MinIONodeOffline" not in
             _cluster_alerts(monitoring), 300, f"HostDown and MinIONodeOffline resolved after {STOPPED} started")
    print(f"resolved {time.monotonic() - started:.0f}s after the start")


def _status_and_backup_with_the_host_down(deployed) -> None:
    """`status` shows the stopped host down and names its alerts; a backup to MinIO still succeeds."""
    status = deployed.cli("status", deployed.env, "--json")
    assert status.rc == 1, "status exits 1 while a host is down"
    document = json.loads(status.stdout)
    hosts = {h["name"]: h for h in document["hosts"]}
    assert hosts[STOPPED]["state"] != "running", hosts[STOPPED]
    assert hosts[STOPPED]["ssh"] is False
    named = {(a["name"], a["host"]) for a in document["alerts"] if a["state"] == "firing"}
    assert ("HostDown", STOPPED) in named, named
    assert all(h["state"] == "running" for name, h in hosts.items() if name != STOPPED)
    backup = deployed.cli("backup", deployed.env, "--type", "full", "--json")
    assert backup.rc == 0, f"backup with {STOPPED} stopped failed:\n{backup.stdout[-2000:]}\n{backup.stderr[-2000:]}"


def _cluster_alerts(monitoring: Monitoring) -> set[str]:
    """MinIO's cluster-level alerts firing (their instance is whichever node reported it)."""
    return {a.name for a in monitoring.alerts() if a.state == "firing" and a.name.startswith("MinIO")}


def test_every_dashboard_and_rule_expression_returns_series(monitoring: Monitoring):
    empty = []
    dashboards = sorted((REPO / "roles/grafana/files/dashboards").glob("*.json"))
    assert len(dashboards) >= 5
    for dashboard in dashboards:
        for title, expr in dashboard_expressions(dashboard):
            if not monitoring.query(substitute_grafana_variables(expr)):
                empty.append(f"{dashboard.name} {title!r}: {expr}")
    rules = sorted((REPO / "roles/prometheus/files/rules").glob("*.yml"))
    assert rules
    for rule_file in rules:
        for name, expr in rule_expressions(rule_file):
            for selector in monitoring.selectors(expr):
                if not monitoring.query(selector):
                    empty.append(f"{rule_file.name} {name}: {selector} (in {expr})")
    assert not empty, "expressions without series:\n" + "\n".join(empty)
