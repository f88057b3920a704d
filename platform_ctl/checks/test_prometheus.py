"""What the prometheus role promises on the monitoring hosts, checked on the host over SSH."""

from __future__ import annotations

import json
import time

testinfra_hosts = ["ansible://monitoring"]


def test_prometheus_and_alertmanager_run_as_their_users(host):
    for service, user in (("prometheus", "prometheus"), ("alertmanager", "alertmanager")):
        unit = host.service(service)
        assert unit.is_enabled, service
        assert unit.is_running, service
        assert host.process.get(comm=service).user == user


def test_they_listen_on_the_private_address_only(host, hostvars):
    address = hostvars["platform_private_ip"]
    for port in (9090, 9093):
        assert host.socket(f"tcp://{address}:{port}").is_listening
        assert not host.socket(f"tcp://0.0.0.0:{port}").is_listening


def test_the_configuration_passes_promtool(host):
    with host.sudo():  # the configuration is root:prometheus 0640
        checked = host.run("promtool check config /etc/prometheus/prometheus.yml")
    assert checked.rc == 0, checked.stdout + checked.stderr


def test_every_target_is_scraped_and_up(host, hostvars):
    # Right after a first deploy some targets are not scraped yet (health "unknown"): up to a minute.
    url = f"http://{hostvars['platform_private_ip']}:9090/api/v1/targets?state=active"
    deadline = time.monotonic() + 60
    while True:
        targets = json.loads(host.check_output(f"curl -sf -m 10 '{url}'"))["data"]["activeTargets"]
        down = [f"{t['labels']['job']}/{t['labels']['instance']}: {t['health']} {t['lastError']}" for t in targets
                if t["health"] != "up"]
        if (targets and not down) or time.monotonic() > deadline:
            break
        time.sleep(5)
    assert targets
    assert not down, down
