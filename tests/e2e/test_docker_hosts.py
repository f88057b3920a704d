"""Docker Engine runs where the spec puts it: on the apps hosts, and nowhere else of the environment.

That what apps1's containers publish obeys the host firewall is the Molecule docker scenario's
(test_published_port_reaches_admitted_peer_only, with a peer and an outsider); here, the placement
the inventory gives the docker role across a whole environment.
"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_only_docker_hosts_run_docker(deployed):
    assert deployed.exec("apps1", "systemctl", "is-active", "docker").stdout.strip() == "active"
    for host in ("minio1", "pg1"):
        assert deployed.exec(host, "sh", "-c", "command -v dockerd").returncode != 0, host
        sysctls = deployed.exec(host, "cat", "/etc/sysctl.d/90-platform.conf", check=True).stdout
        assert sysctls.count("net.ipv4.ip_forward = 0") == 1, host
