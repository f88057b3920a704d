"""Verify the prometheus role: pm-mon1 (group monitoring, data volume) runs Prometheus and Alertmanager.

pm-a is a postgres host and pm-b a minio host, with base and node_exporter only: their node targets
are up, their postgres and minio targets (no exporter, no MinIO here) are down, and the trino job
has no target at all. Everything
is asked from inside the droplets (the services listen on the VPC address only).
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import time
from pathlib import Path
from typing import Any

import pytest
import testinfra
import yaml

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = ["pm-mon1"]

ADDRESSES = {"pm-mon1": "10.201.16.11", "pm-a": "10.201.16.12", "pm-b": "10.201.16.13"}
MONITORING = "pm-mon1"
PROMETHEUS = f"http://{ADDRESSES[MONITORING]}:9090"
ALERTMANAGER = f"http://{ADDRESSES[MONITORING]}:9093"
TARGET_JOBS = ("node", "postgres", "minio", "trino", "prometheus", "alertmanager", "docker")
# 80 % of pm-mon1's 2 GiB volume: the role's default, 1638MB (Prometheus' units are powers of 1024).
RETENTION_BYTES = int(2 * 1024 * 0.8) * 1024 * 1024


def _get(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _api(host: testinfra.host.Host, url: str) -> Any:
    return json.loads(host.check_output(f"curl -sS --fail --max-time 5 {shlex.quote(url)}"))


def _wait(check, timeout: float = 60, every: float = 2):
    """``check()``'s first truthy result within ``timeout`` seconds, else its last (falsy) one."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(every)


def _targets(host: testinfra.host.Host) -> list[dict[str, Any]]:
    return _api(host, f"{PROMETHEUS}/api/v1/targets?state=active")["data"]["activeTargets"]


# --- The services --------------------------------------------------------------------------------


@pytest.mark.parametrize(("unit", "user"), [("prometheus", "prometheus"), ("alertmanager", "alertmanager")])
def test_service_runs_as_its_own_user(host, unit, user):
    service = host.service(unit)
    if not (service.is_enabled and service.is_running):
        journal = host.run(f"journalctl -u {unit} --no-pager -n 50").stdout
        pytest.fail(f"{unit}: enabled={service.is_enabled} running={service.is_running}\n{journal}")
    assert host.process.get(comm=unit).user == user
    assert host.user(user).shell == "/usr/sbin/nologin"


@pytest.mark.parametrize("unit", ["prometheus", "alertmanager"])
def test_unit_is_sandboxed(host, unit):
    shown = dict(line.split("=", 1) for line in host.check_output(
        f"systemctl show {unit} -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp"
        " -p CapabilityBoundingSet -p MemoryDenyWriteExecute").splitlines())
    assert shown == {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                     "PrivateTmp": "yes", "CapabilityBoundingSet": "", "MemoryDenyWriteExecute": "yes"}


def test_listens_on_the_private_address_only(host):
    listening = host.check_output("ss -Htln '( sport = :9090 or sport = :9093 )'").splitlines()
    local = sorted(line.split()[3] for line in listening)
    assert local == [f"{ADDRESSES[MONITORING]}:9090", f"{ADDRESSES[MONITORING]}:9093"]


def test_another_vpc_host_reaches_both_apis():
    other = _get("pm-a")
    for url in (f"{PROMETHEUS}/-/ready", f"{ALERTMANAGER}/-/ready"):
        assert other.run(f"curl -sS --fail --max-time 5 {url}").rc == 0, url


# --- Storage -------------------------------------------------------------------------------------


def test_tsdb_is_on_the_volume(host):
    mount = host.mount_point("/var/lib/prometheus")
    assert mount.exists
    assert mount.filesystem == "xfs"
    data = host.file("/var/lib/prometheus/data")
    assert data.is_directory
    assert (data.user, data.mode) == ("prometheus", 0o750)


def test_retention_flags_are_in_effect(host):
    flags = _api(host, f"{PROMETHEUS}/api/v1/status/flags")["data"]
    assert flags["storage.tsdb.path"] == "/var/lib/prometheus/data"
    assert flags["storage.tsdb.retention.time"] == "15d"
    assert flags["web.enable-lifecycle"] == "true"
    # The flag reads back reformatted (1638MB is "1GiB614MiB"); the TSDB's own figure is exact.
    query = f"{PROMETHEUS}/api/v1/query?query=prometheus_tsdb_retention_limit_bytes"
    (sample,) = _api(host, query)["data"]["result"]
    assert int(float(sample["value"][1])) == RETENTION_BYTES


# --- Configuration and targets -------------------------------------------------------------------


def test_promtool_accepts_the_live_configuration(host):
    result = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert result.rc == 0, result.stdout + result.stderr


@pytest.mark.parametrize("job", TARGET_JOBS)
def test_target_file_exists(host, job):
    target_file = host.file(f"/etc/prometheus/targets/{job}.yml")
    assert target_file.is_file
    assert (target_file.user, target_file.group, target_file.mode) == ("root", "prometheus", 0o640)


def test_node_targets_of_every_host_are_up_with_hostname_labels(host):
    def node_targets():
        found = {t["labels"]["instance"]: t for t in _targets(host) if t["labels"]["job"] == "node"}
        return found if found and all(t["health"] == "up" for t in found.values()) else None

    found = _wait(node_targets)
    assert found, [(t["labels"], t["health"], t["lastError"]) for t in _targets(host)]
    assert {name: (t["scrapeUrl"], t["labels"]["group"]) for name, t in found.items()} == {
        "pm-mon1": (f"http://{ADDRESSES['pm-mon1']}:9100/metrics", "monitoring"),
        "pm-a": (f"http://{ADDRESSES['pm-a']}:9100/metrics", "postgres"),
        "pm-b": (f"http://{ADDRESSES['pm-b']}:9100/metrics", "minio"),
    }


def test_every_job_has_the_inventory_targets(host):
    def summary():
        return sorted((t["labels"]["job"], t["labels"]["instance"], t["labels"]["group"], t["health"])
                      for t in _targets(host))

    expected = [
        ("alertmanager", "pm-mon1", "monitoring", "up"),
        # No MinIO either: listed and down.
        ("minio", "pm-b", "minio", "down"),
        ("minio_node", "pm-b", "minio", "down"),
        ("node", "pm-a", "postgres", "up"),
        ("node", "pm-b", "minio", "up"),
        ("node", "pm-mon1", "monitoring", "up"),
        # No PostgreSQL in this scenario: the target is listed and down.
        ("postgres", "pm-a", "postgres", "down"),
        ("prometheus", "pm-mon1", "monitoring", "up"),
    ]
    assert _wait(lambda: summary() == expected), summary()


def test_rules_are_loaded(host):
    groups = _api(host, f"{PROMETHEUS}/api/v1/rules")["data"]["groups"]
    rules = {(g["file"], r["type"], r["name"]) for g in groups for r in g["rules"]}
    # The role's own rule files (roles/prometheus/files/rules) and the scenario's extra one.
    shipped = set()
    for path in sorted((Path(__file__).resolve().parents[3] / "roles/prometheus/files/rules").glob("*.yml")):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                kind = "alerting" if "alert" in rule else "recording"
                shipped.add((f"/etc/prometheus/rules/{path.name}", kind, rule.get("alert") or rule["record"]))
    assert shipped
    assert rules == shipped | {
        ("/etc/prometheus/rules/molecule.yml", "recording", "molecule:up:sum"),
        ("/etc/prometheus/rules/molecule.yml", "alerting", "MoleculeAlwaysFiring"),
    }
    unhealthy = [(r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r.get("health") == "err"]
    assert not unhealthy, unhealthy


# --- Alertmanager --------------------------------------------------------------------------------


def test_alertmanager_is_ready_with_the_default_receiver(host):
    status = _api(host, f"{ALERTMANAGER}/api/v2/status")
    assert status["cluster"]["status"] == "disabled"
    assert "receiver: default" in status["config"]["original"]
    # No webhook URL in this scenario: the default receiver has no integration, nothing leaves.
    assert "webhook_configs" not in status["config"]["original"]


def test_prometheus_sends_alerts_to_alertmanager(host):
    def firing():
        alerts = _api(host, f"{ALERTMANAGER}/api/v2/alerts")
        return [a for a in alerts if a["labels"]["alertname"] == "MoleculeAlwaysFiring"]

    alerts = _wait(firing)
    assert alerts, _api(host, f"{PROMETHEUS}/api/v1/alertmanagers")
    assert alerts[0]["labels"]["environment"] == "molecule"
    assert alerts[0]["receivers"] == [{"name": "default"}]


# --- Credentials ---------------------------------------------------------------------------------


def test_minio_token_is_a_group_readable_jwt_for_the_prometheus_user(host):
    token_file = host.file("/etc/prometheus/secrets/minio.token")
    assert (token_file.user, token_file.group, token_file.mode) == ("root", "prometheus", 0o640)
    header, payload, _ = token_file.content_string.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["alg"] == "HS512"
    assert claims == {"exp": 4102444800, "iss": "prometheus", "sub": "prometheus"}


def test_trino_password_file_is_group_readable_only(host):
    password_file = host.file("/etc/prometheus/secrets/trino.password")
    assert (password_file.user, password_file.group, password_file.mode) == ("root", "prometheus", 0o640)
    assert host.file("/etc/prometheus/secrets").mode == 0o750
