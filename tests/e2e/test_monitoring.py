"""Observability on the shared e2e environment: every target up, every expression backed by series.

Prometheus is read through platform_ctl.monitoring (SSH to the monitoring host, then its private
address), the path `platform-ctl status` takes. Alerts that fire and resolve when hosts go down are
test_minio_node_loss.py's; that node_exporter answers the monitoring hosts only is Molecule's
(monitoring scenario), and so is promtool's check of the live configuration (and verify's).
"""

from __future__ import annotations

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
