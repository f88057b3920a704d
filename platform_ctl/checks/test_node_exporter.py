"""What the node_exporter role promises on every host, checked on the host over SSH."""

from __future__ import annotations

testinfra_hosts = ["ansible://all"]


def test_node_exporter_runs_as_its_user(host):
    service = host.service("node_exporter")
    assert service.is_enabled
    assert service.is_running
    assert host.process.get(comm="node_exporter").user == "node-exporter"


def test_node_exporter_listens_on_the_private_address_only(host, hostvars):
    address = hostvars["platform_private_ip"]
    assert host.socket(f"tcp://{address}:9100").is_listening
    assert not host.socket("tcp://0.0.0.0:9100").is_listening
    # The host reaches itself (loopback routing); other hosts only from the monitoring group.
    metrics = host.check_output(f"curl -sf -m 10 http://{address}:9100/metrics")
    assert "node_exporter_build_info{" in metrics
