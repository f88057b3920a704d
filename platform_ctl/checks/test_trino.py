"""What the trino role promises on every Trino node, checked on the host over SSH."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://trino_coordinator", "ansible://trino_worker"]


def _info(host, hostvars) -> dict:
    url = f"https://{hostvars['inventory_hostname']}.{hostvars['platform_domain']}:8443/v1/info"
    # The system trust store holds the environment's CA (common/tasks/certificate.yml).
    return json.loads(host.check_output(f"curl -sf {url}"))


def test_trino_runs_as_its_user(host):
    service = host.service("trino")
    assert service.is_enabled
    assert service.is_running
    assert host.process.get(comm="trino-server-co").user == "trino"


def test_node_is_up_over_verified_https(host, hostvars):
    info = _info(host, hostvars)
    assert info["starting"] is False
    assert info["coordinator"] is ("trino_coordinator" in hostvars["group_names"])


def test_plain_http_is_off(host, hostvars):
    config = host.check_output("sudo cat /etc/trino/config.properties")
    assert "http-server.http.enabled=false" in config
    # The HTTPS port does not answer plain HTTP.
    url = f"http://{hostvars['inventory_hostname']}.{hostvars['platform_domain']}:8443/v1/info"
    assert host.run(f"curl -s -m 10 -o /dev/null -w '%{{http_code}}' {url}").stdout in ("000", "400")


def test_secrets_file_is_private(host):
    assert host.check_output("sudo stat -c '%U %G %a' /etc/trino/trino.env") == "root trino 640"
