"""`platform-ctl status --json`: hosts with their services, and alerts, from what Prometheus said."""

from __future__ import annotations

import json

from platform_ctl.infra import HostStatus
from platform_ctl.monitoring import Alert, MonitoringStatus, Target, status_document


def test_services_are_grouped_per_host_under_their_service_names() -> None:
    hosts = [HostStatus("minio1", ("minio",), "running", "10.42.0.12", True),
             HostStatus("apps1", ("apps",), "stopped", "10.42.0.18", False)]
    seen = MonitoringStatus("mon1", [
        Target("minio1", "minio", True), Target("minio1", "node", True),
        Target("apps1", "node", False, "connection refused"),
    ], [Alert("HostDown", "firing", "critical", "apps1", "Host apps1 is down", "2026-11-26 09:00:00")])
    document = status_document(hosts, seen, "")
    # One line: the CLI's --json output is read line by line like deploy's events.
    assert "\n" not in json.dumps(document)
    assert document["monitoring"] == {"source": "mon1"}
    assert document["hosts"][0]["services"] == {"node_exporter": {"up": True}, "minio": {"up": True}}
    assert document["hosts"][1]["services"] == {"node_exporter": {"up": False, "error": "connection refused"}}
    assert [a["name"] for a in document["alerts"]] == ["HostDown"]
    assert seen.down == [Target("apps1", "node", False, "connection refused")]
    assert [a.name for a in seen.firing] == ["HostDown"]


def test_unreadable_monitoring_is_said() -> None:
    reason = "mon1: GET http://10.42.0.17:9090/api/v1/query: Connection refused"
    document = status_document([HostStatus("mon1", ("monitoring",), "running", "10.42.0.17", True)], None, reason)
    assert document["monitoring"] == {"unavailable": reason}
    assert document["hosts"][0]["services"] == {}
    assert document["alerts"] == []
