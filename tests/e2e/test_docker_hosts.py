"""Docker Engine on the deployed apps host: what its containers publish obeys the host firewall.

apps1 runs Docker (phase apps). A container publishing a port the apps group serves (8888, opened
to the VPC by the base role) is reachable from another host of the VPC; one publishing a port no
opening names (18080) is reachable from nowhere, although Docker's own rules admit every source.
"""

from __future__ import annotations

import shlex
import subprocess

import pytest

OPEN_PORT = 8888       # base_firewall_group_ports.apps: from the VPC
CLOSED_PORT = 18080    # in no opening
PROBE = "/srv/e2e-probe"


def _exec(deployed, host: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", "exec", f"platform-{deployed.env}-{host}", "sh", "-c", command],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _ok(deployed, host: str, command: str, timeout: float = 300) -> str:
    done = _exec(deployed, host, command, timeout)
    assert done.returncode == 0, f"{host}: {command}: {done.stderr.strip()[-800:]}"
    return done.stdout


@pytest.fixture(scope="module")
def probes(deployed):
    """Two containers on apps1 from an image built there (no registry is reachable): one per port."""
    _ok(deployed, "apps1", "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null")
    dockerfile = ('FROM scratch\nCOPY busybox /bin/busybox\nCOPY www /www\n'
                  'ENTRYPOINT ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/www"]\n')
    _ok(deployed, "apps1", f"mkdir -p {PROBE}/www && cp /bin/busybox {PROBE}/"
                           f" && echo e2e-probe > {PROBE}/www/index.html"
                           f" && printf %s {shlex.quote(dockerfile)} > {PROBE}/Dockerfile"
                           f" && docker build -q -t e2e-probe:1 {PROBE}")
    for port in (OPEN_PORT, CLOSED_PORT):
        _ok(deployed, "apps1", f"docker run -d --name e2e-probe-{port} -p 0.0.0.0:{port}:8080 e2e-probe:1")
    address = _ok(deployed, "apps1", "hostname -i").split()[0]
    yield address
    _exec(deployed, "apps1", f"docker rm -f e2e-probe-{OPEN_PORT} e2e-probe-{CLOSED_PORT}; docker rmi e2e-probe:1;"
                             f" rm -rf {PROBE}; apt-get purge -y -qq busybox-static")


def test_published_ports_obey_the_host_firewall(deployed, probes):
    def get(peer: str, port: int) -> str:
        done = _exec(deployed, peer, f"curl -sS --max-time 4 http://{probes}:{port}/", timeout=30)
        return done.stdout.strip() if done.returncode == 0 else "refused"

    assert get("minio1", OPEN_PORT) == "e2e-probe"
    assert get("mon1", OPEN_PORT) == "e2e-probe"
    # Docker's FORWARD chain admits 18080 from anywhere; the platform's forward chain does not.
    assert get("minio1", CLOSED_PORT) == "refused"
    assert get("mon1", CLOSED_PORT) == "refused"
    counter = _ok(deployed, "apps1", "nft list chain inet platform_filter published")
    assert 'counter packets 0 bytes 0 drop comment "published port, source not admitted"' not in counter


def test_only_docker_hosts_run_docker(deployed):
    assert _exec(deployed, "apps1", "systemctl is-active docker").stdout.strip() == "active"
    for host in ("minio1", "pg1"):
        assert _exec(deployed, host, "command -v dockerd").returncode != 0, host
        assert _ok(deployed, host, "cat /etc/sysctl.d/90-platform.conf").count("net.ipv4.ip_forward = 0") == 1
