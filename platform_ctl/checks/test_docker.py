"""What the docker role promises on the hosts of group docker, checked on the host over SSH."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://docker"]


def test_engine_runs_with_the_platform_settings(host, hostvars):
    assert host.service("docker").is_enabled
    with host.sudo():
        info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LiveRestoreEnabled"] is True
    assert info["LoggingDriver"] == "json-file"


def test_metrics_listen_on_the_private_address_only(host, hostvars):
    address = hostvars["platform_private_ip"]
    listeners = host.check_output("ss -Htln 'sport = :9323'").splitlines()
    assert [line.split()[3] for line in listeners] == [f"{address}:9323"]


def test_forwarding_is_on_and_the_firewall_filters_published_ports(host):
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"
    with host.sudo():
        forward = host.check_output("nft list chain inet platform_filter forward")
        # Docker's own rules are in place beside the platform's table.
        docker_forward = host.check_output("iptables -S FORWARD")
    assert "policy drop;" in forward
    assert "ct status dnat jump published" in forward
    assert "-j DOCKER-USER" in docker_forward


def test_admin_user_is_in_the_docker_group_only_when_the_spec_says_so(host, hostvars):
    in_group = "docker" in host.user(hostvars["platform_admin_user"]).groups
    assert in_group is bool(hostvars.get("platform_docker_admin_access", False))
