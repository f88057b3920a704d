"""What the environment's own monitoring says: targets up or down, and firing alerts.

Prometheus and Alertmanager listen on the monitoring hosts' private addresses only, which the
controller may not reach (DigitalOcean: it is outside the VPC). Every request therefore goes
through SSH to a monitoring host and is made there with ``curl`` against its private address, the
same path on every backend. The first monitoring host that answers is used.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from platform_ctl.access import ssh_options
from platform_ctl.errors import PlatformCtlError

if TYPE_CHECKING:
    from platform_ctl.environment import Environment
    from platform_ctl.infra import Host, HostStatus

PROMETHEUS_PORT = 9090
ALERTMANAGER_PORT = 9093

#: Scrape jobs (roles/prometheus) and the service each stands for, in display order.
SERVICES: dict[str, str] = {
    "node": "node_exporter",
    "postgres": "postgres_exporter",
    "minio": "minio",
    "minio_node": "minio_node_metrics",
    "trino": "trino",
    "prometheus": "prometheus",
    "alertmanager": "alertmanager",
    "docker": "docker_engine",
}


class MonitoringUnavailable(PlatformCtlError):
    """No monitoring host answered (none in the spec, all down, or Prometheus not running)."""


@dataclass(frozen=True)
class Target:
    """One scrape target: a service on a host, as Prometheus last saw it."""

    host: str
    job: str
    up: bool
    error: str = ""

    @property
    def service(self) -> str:
        return SERVICES.get(self.job, self.job)


@dataclass(frozen=True)
class Alert:
    name: str
    state: str  # firing / pending (Prometheus); suppressed when Alertmanager silences or inhibits it
    severity: str
    host: str
    summary: str
    since: str


@dataclass
class MonitoringStatus:
    source: str  # the monitoring host read
    targets: list[Target] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)

    def by_host(self) -> dict[str, list[Target]]:
        hosts: dict[str, list[Target]] = {}
        order = list(SERVICES)
        for t in sorted(self.targets, key=lambda t: (order.index(t.job) if t.job in order else len(order), t.job)):
            hosts.setdefault(t.host, []).append(t)
        return hosts

    @property
    def down(self) -> list[Target]:
        return [t for t in self.targets if not t.up]

    @property
    def firing(self) -> list[Alert]:
        return [a for a in self.alerts if a.state == "firing"]


class Monitoring:
    """HTTP GETs to a monitoring host's Prometheus and Alertmanager, over SSH."""

    def __init__(self, env: Environment, host: Host) -> None:
        self.env = env
        self.host = host
        self._access = env.access(create=False)

    def get(self, port: int, path: str, params: dict[str, str] | None = None, timeout: float = 20) -> Any:
        """The JSON answer of ``GET http://<private ip>:<port><path>`` made on the monitoring host."""
        url = f"http://{self.host.private_ip}:{port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        argv = ["ssh", *ssh_options(self._access), f"{self._access.user}@{self.host.public_ip}",
                "curl", "-fsS", "--max-time", str(int(timeout)), f"'{url}'"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout + 15, check=False)
        except subprocess.TimeoutExpired as exc:
            raise MonitoringUnavailable(f"{self.host.name}: no answer from {url} within {timeout + 15:.0f}s") from exc
        if done.returncode != 0:
            reason = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
            raise MonitoringUnavailable(f"{self.host.name}: GET {url}: {reason}")
        return json.loads(done.stdout)

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar) of a PromQL expression, Prometheus' ``data.result``."""
        answer = self.get(PROMETHEUS_PORT, "/api/v1/query", {"query": expr})
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def selectors(self, expr: str) -> list[str]:
        """Every series selector of ``expr`` as a query of its own, from Prometheus' own parser.

        An alert's expression returns nothing while all is well (``up == 0``); its selectors must
        still each match series, or the rule watches a metric nobody exports.
        """
        tree = self.get(PROMETHEUS_PORT, "/api/v1/parse_query", {"query": expr})["data"]
        found: list[str] = []

        def walk(node: Any) -> None:
            if isinstance(node, dict):
                if node.get("type") in ("vectorSelector", "matrixSelector"):
                    matchers = ",".join(f"{m['name']}{m['type']}{json.dumps(m['value'])}" for m in node["matchers"])
                    if "{" + matchers + "}" not in found:
                        found.append("{" + matchers + "}")
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(tree)
        return found

    def targets(self) -> list[Target]:
        answer = self.get(PROMETHEUS_PORT, "/api/v1/targets", {"state": "active"})
        return [
            Target(t["labels"].get("instance", t["scrapeUrl"]), t["labels"].get("job", "?"), t["health"] == "up",
                   t.get("lastError", ""))
            for t in answer["data"]["activeTargets"]
        ]

    def alerts(self) -> list[Alert]:
        """Prometheus' firing and pending alerts; firing ones Alertmanager silences or inhibits say so."""
        rules = self.get(PROMETHEUS_PORT, "/api/v1/alerts")["data"]["alerts"]
        suppressed = {
            _alert_key(a["labels"]) for a in self.get(ALERTMANAGER_PORT, "/api/v2/alerts")
            if a.get("status", {}).get("state") == "suppressed"
        }
        alerts = []
        for a in rules:
            labels = a["labels"]
            state = "suppressed" if a["state"] == "firing" and _alert_key(labels) in suppressed else a["state"]
            alerts.append(Alert(labels.get("alertname", "?"), state, labels.get("severity", ""),
                                labels.get("instance", ""), a.get("annotations", {}).get("summary", ""),
                                a.get("activeAt", "")[:19].replace("T", " ")))
        return sorted(alerts, key=lambda a: (a.state != "firing", a.name, a.host))


def _alert_key(labels: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


def connect(env: Environment) -> Monitoring:
    """A connection to the first monitoring host whose Prometheus answers."""
    hosts = [h for h in env.backend.hosts(env.spec) if "monitoring" in h.groups]
    if not hosts:
        raise MonitoringUnavailable(f"{env.name} has no monitoring host (groups.monitoring in its spec)")
    reasons = []
    for host in hosts:
        monitoring = Monitoring(env, host)
        try:
            monitoring.query("vector(1)")
        except MonitoringUnavailable as exc:
            reasons.append(exc.message)
            continue
        return monitoring
    raise MonitoringUnavailable("; ".join(reasons))


def read(env: Environment) -> MonitoringStatus:
    monitoring = connect(env)
    return MonitoringStatus(monitoring.host.name, monitoring.targets(), monitoring.alerts())


def status_document(hosts: list[HostStatus], monitoring: MonitoringStatus | None, unavailable: str) -> dict[str, Any]:
    """``platform-ctl status --json``: hosts with their services, and the alerts."""
    services = monitoring.by_host() if monitoring else {}
    return {
        "monitoring": {"source": monitoring.source} if monitoring else {"unavailable": unavailable},
        "hosts": [
            {"name": h.name, "groups": list(h.groups), "address": h.address, "state": h.state, "ssh": h.ssh,
             "services": {t.service: {"up": t.up, **({"error": t.error} if t.error else {})}
                          for t in services.get(h.name, [])}}
            for h in hosts
        ],
        "alerts": [vars(a) for a in monitoring.alerts] if monitoring else [],
    }
