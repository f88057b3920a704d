"""Verify the base role on the two Molecule droplets: live state first, then behaviour from outside.

base-a is in group postgres, base-b in minio and apps (see molecule.yml); both sit on the
10.201.11.0/24 network that stands in for the VPC. base-b's apps group has a public (user-facing)
port, 8888, via base_firewall_public_ports.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import time
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("all")

ADMIN = "platform"
DOMAIN = "molecule.platform.internal"
ADDRESSES = {"base-a": "10.201.11.11", "base-b": "10.201.11.12"}
KEY = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "id_ed25519"
MODERN_CIPHERS = {
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
}
SSH_CLIENT_OPTIONS = (
    "BatchMode=yes",
    "StrictHostKeyChecking=no",
    "UserKnownHostsFile=/dev/null",
    "ConnectTimeout=5",
    "IdentitiesOnly=yes",
)
# A port in no group's matrix, one base-b opens to the VPC because it is in group minio, and one it
# opens to everyone because molecule.yml makes it a public port of its group apps.
CLOSED_PORT = 18081
MINIO_PORT = 9000
PUBLIC_PORT = 8888
# The port of extra rule extra_from_minio (source_groups: [minio]), open on both hosts to base-b only.
GROUP_SOURCE_PORT = 18083
# A source outside the VPC (TEST-NET-1): base-a sends from it, base-b routes replies to it on-link.
OUTSIDE_ADDRESS = "192.0.2.11"


def _get(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _connect(host: testinfra.host.Host, address: str, port: int, source: str = "") -> str:
    """Return "ok" if ``host`` completes a TCP handshake with address:port within 3 s, else the error.

    ``source``: the local address to send from (default: the kernel's choice).
    """
    probe = (f"import socket; socket.create_connection(({address!r}, {port}), timeout=3,"
             f" source_address=({source!r}, 0)).close()")
    result = host.run(f"python3 -c {shlex.quote(probe)}")
    # On failure the last traceback line, e.g. "TimeoutError: timed out".
    return "ok" if result.rc == 0 else (result.stderr.strip().splitlines() or ["?"])[-1]


def _journal(host: testinfra.host.Host, unit: str) -> str:
    return host.run(f"journalctl -u {unit} --no-pager -n 50").stdout


def _ssh(address: str, *options: str, user: str = ADMIN, command: str = "true") -> subprocess.CompletedProcess:
    """Run ssh from the test runner (outside every droplet), never trusting a stored host key."""
    return subprocess.run(
        [
            "ssh",
            *(arg for option in SSH_CLIENT_OPTIONS for arg in ("-o", option)),
            *options,
            f"{user}@{address}",
            command,
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.fixture(scope="module")
def listeners():
    """HTTP listeners on base-b: on a closed port, a port of its group and a public port of its group."""
    peer = _get("base-b")
    units = []
    for port in (CLOSED_PORT, MINIO_PORT, PUBLIC_PORT):
        unit = f"probe-{port}"
        peer.run(f"systemctl stop {unit}; systemctl reset-failed {unit}")
        peer.check_output(f"systemd-run --unit {unit} --working-directory=/tmp python3 -m http.server {port}")
        units.append(unit)
    for port in (CLOSED_PORT, MINIO_PORT, PUBLIC_PORT):
        for _ in range(50):
            if peer.run(f"curl -sf -o /dev/null http://127.0.0.1:{port}/").rc == 0:
                break
            time.sleep(0.2)
    yield peer
    for unit in units:
        peer.run(f"systemctl stop {unit}")
        peer.run(f"systemctl reset-failed {unit}")


@pytest.fixture(scope="module")
def group_listener():
    """An HTTP listener on base-a's port of rule extra_from_minio."""
    host = _get("base-a")
    unit = f"probe-{GROUP_SOURCE_PORT}"
    host.run(f"systemctl stop {unit}; systemctl reset-failed {unit}")
    host.check_output(f"systemd-run --unit {unit} --working-directory=/tmp python3 -m http.server {GROUP_SOURCE_PORT}")
    for _ in range(50):
        if host.run(f"curl -sf -o /dev/null http://127.0.0.1:{GROUP_SOURCE_PORT}/").rc == 0:
            break
        time.sleep(0.2)
    yield host
    host.run(f"systemctl stop {unit}")
    host.run(f"systemctl reset-failed {unit}")


@pytest.fixture
def outside():
    """base-a as a user outside the VPC: it also holds OUTSIDE_ADDRESS, to which base-b routes on-link.

    Both sit on one Docker bridge, so base-b's replies to that address reach base-a without a router;
    base-b's firewall sees a source outside platform_vpc_cidr. Returns base-a.
    """
    client, peer = _get("base-a"), _get("base-b")
    device = client.check_output(f"ip -o route get {ADDRESSES['base-b']}").split(" dev ")[1].split()[0]
    peer_device = peer.check_output(f"ip -o route get {ADDRESSES['base-a']}").split(" dev ")[1].split()[0]
    client.run(f"ip address del {OUTSIDE_ADDRESS}/32 dev {device}")
    peer.run(f"ip route del {OUTSIDE_ADDRESS}/32")
    client.check_output(f"ip address add {OUTSIDE_ADDRESS}/32 dev {device}")
    peer.check_output(f"ip route add {OUTSIDE_ADDRESS}/32 dev {peer_device}")
    yield client
    client.run(f"ip address del {OUTSIDE_ADDRESS}/32 dev {device}")
    peer.run(f"ip route del {OUTSIDE_ADDRESS}/32")


# --- SSH ---------------------------------------------------------------------------------------


def test_sshd_effective_config_is_hardened(host):
    effective = dict(line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line)
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["x11forwarding"] == "no"
    assert effective["authenticationmethods"] == "publickey"
    assert effective["allowusers"] == ADMIN
    assert set(effective["ciphers"].split(",")) <= MODERN_CIPHERS
    assert not {m for m in effective["macs"].split(",") if "sha1" in m or "md5" in m}
    assert not {k for k in effective["kexalgorithms"].split(",") if "sha1" in k}


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_admin_logs_in_with_key_and_sudo_without_password(name):
    result = _ssh(ADDRESSES[name], "-i", str(KEY), command="sudo -n id -u")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "0"


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_password_login_is_refused(name):
    result = _ssh(
        ADDRESSES[name],
        "-o",
        "PubkeyAuthentication=no",
        "-o",
        "PreferredAuthentications=password,keyboard-interactive",
    )
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


# --- Admin user ----------------------------------------------------------------------------------


def test_admin_user_has_exactly_the_environment_key(host):
    user = host.user(ADMIN)
    assert user.exists
    assert user.shell == "/bin/bash"
    keys = host.file(f"{user.home}/.ssh/authorized_keys")
    assert keys.user == ADMIN
    assert keys.mode == 0o600
    assert keys.content_string.strip() == KEY.with_suffix(".pub").read_text().strip()


def test_sudoers_drop_in_is_valid(host):
    drop_in = host.file("/etc/sudoers.d/10-platform-admin")
    assert drop_in.mode == 0o440
    assert f"{ADMIN} ALL=(ALL:ALL) NOPASSWD: ALL" in drop_in.content_string
    assert host.run("visudo -c").rc == 0


# --- Firewall ------------------------------------------------------------------------------------


def test_firewall_table_is_loaded_with_policy_drop(host):
    ruleset = json.loads(host.check_output("nft -j list table inet platform_filter"))["nftables"]
    chains = [item["chain"] for item in ruleset if "chain" in item]
    # input and forward are base chains that drop by default; published is the forward chain's
    # check of connections Docker translated (no Docker here: it sees nothing, and is there).
    assert [(c["name"], c.get("hook"), c.get("policy")) for c in chains] == [
        ("input", "input", "drop"), ("forward", "forward", "drop"), ("published", None, None)]
    listing = host.check_output("nft list table inet platform_filter")
    # base_firewall_extra_rules: a rule without sources or source_groups admits the VPC.
    assert 'ip saddr 10.201.11.0/24 tcp dport 18082 accept comment "extra_vpc"' in listing


def test_a_source_groups_rule_admits_only_the_groups_hosts(host):
    # extra_from_minio: source_groups [minio], i.e. base-b's private address and nothing else.
    listing = host.check_output("nft list chain inet platform_filter input")
    rules = [line.strip() for line in listing.splitlines() if "18083" in line]
    assert rules == [f'ip saddr {ADDRESSES["base-b"]} tcp dport 18083 accept comment "extra_from_minio"'], listing


def test_node_exporter_is_closed_without_monitoring_hosts(host):
    # The default service rule admits group monitoring's hosts; this inventory has none, so nothing
    # is opened (not the VPC, not everyone), and the rules file says why.
    assert "9100" not in host.check_output("nft list table inet platform_filter")
    rules_file = host.file("/etc/nftables.d/10-platform.nft").content_string
    assert "# node_exporter: no host in monitoring, nothing opened" in rules_file


def test_a_host_groups_rule_stays_off_hosts_outside_those_groups(host):
    # docker_metrics (host_groups [docker]): neither host runs Docker, so the rule is not rendered.
    assert "docker_metrics" not in host.file("/etc/nftables.d/10-platform.nft").content_string
    assert "9323" not in host.check_output("nft list table inet platform_filter")


def test_firewall_opens_only_this_hosts_group_ports(host):
    listing = host.check_output("nft list chain inet platform_filter input")
    name = host.backend.get_hostname()
    if name == "base-a":
        assert 'tcp dport { 5432, 9187 } accept comment "group postgres"' in listing
        assert "9000" not in listing
        # postgres has no public ports: every group rule here is VPC-only.
        assert ', users"' not in listing
    else:
        assert 'tcp dport { 9000, 9001 } accept comment "group minio"' in listing
        assert 'tcp dport { 3070, 8888 } accept comment "group apps"' in listing
        assert "5432" not in listing
        # The public port of group apps, from any IPv4 and IPv6 source (no saddr); none for minio.
        public = [line.strip() for line in listing.splitlines() if ', users"' in line]
        assert public == [f'tcp dport {PUBLIC_PORT} accept comment "group apps, users"'], listing


def test_closed_port_is_refused_from_the_peer(listeners):
    # The listener is up (base-b reaches it over loopback), yet base-a cannot reach it.
    assert listeners.run(f"curl -sf -o /dev/null http://127.0.0.1:{CLOSED_PORT}/").rc == 0
    assert _connect(_get("base-a"), ADDRESSES["base-b"], CLOSED_PORT) == "TimeoutError: timed out"


def test_group_port_and_ssh_are_open_from_the_peer(listeners):
    a = _get("base-a")
    assert _connect(a, ADDRESSES["base-b"], MINIO_PORT) == "ok"
    assert _connect(a, ADDRESSES["base-b"], 22) == "ok"


def test_a_source_groups_port_is_open_to_the_group_only(group_listener):
    # base-b is in group minio and gets in; the test runner, on the network's gateway inside the
    # VPC's range, does not.
    assert _connect(_get("base-b"), ADDRESSES["base-a"], GROUP_SOURCE_PORT) == "ok"
    with pytest.raises(TimeoutError):
        socket.create_connection((ADDRESSES["base-a"], GROUP_SOURCE_PORT), timeout=3).close()


def test_only_the_public_port_is_open_from_outside_the_vpc(listeners, outside):
    # From the VPC both answer; from outside it the group's VPC-only port does not, the public one does.
    assert _connect(outside, ADDRESSES["base-b"], MINIO_PORT) == "ok"
    assert _connect(outside, ADDRESSES["base-b"], PUBLIC_PORT) == "ok"
    assert _connect(outside, ADDRESSES["base-b"], PUBLIC_PORT, source=OUTSIDE_ADDRESS) == "ok"
    assert _connect(outside, ADDRESSES["base-b"], MINIO_PORT, source=OUTSIDE_ADDRESS) == "TimeoutError: timed out"
    assert _connect(outside, ADDRESSES["base-b"], 22, source=OUTSIDE_ADDRESS) == "TimeoutError: timed out"


def test_reloading_firewall_keeps_foreign_tables(host):
    # Docker adds its own tables later: nftables reload and restart must replace only ours.
    host.check_output("nft add table ip foreign_probe")
    try:
        host.check_output("systemctl reload nftables")
        host.check_output("systemctl restart nftables")
        tables = host.check_output("nft list tables")
        assert "table ip foreign_probe" in tables
        assert "table inet platform_filter" in tables
    finally:
        host.run("nft delete table ip foreign_probe")


# --- Services ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "unit",
    [
        "ssh",
        "nftables",
        "chrony",
        "unattended-upgrades",
        "apt-daily.timer",
        "apt-daily-upgrade.timer",
    ],
)
def test_service_enabled_and_running(host, unit):
    service = host.service(unit)
    if not (service.is_enabled and service.is_running):
        pytest.fail(f"{unit}: enabled={service.is_enabled} running={service.is_running}\n{_journal(host, unit)}")


def test_chrony_answers_and_has_no_outside_sources(host):
    # Molecule sets base_time_sync_servers: [] so nothing leaves this machine.
    tracking = host.run("chronyc -n tracking")
    assert tracking.rc == 0, tracking.stderr + _journal(host, "chrony")
    assert host.check_output("chronyc -n -c sources") == ""
    assert "-x" in host.check_output("systemctl show chrony -p ExecStart --value")


def test_unattended_upgrades_take_security_updates_only(host):
    config = host.check_output("apt-config dump")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in config
    patterns = [
        line.split('"')[1] for line in config.splitlines() if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")
    ]
    assert patterns
    assert all("label=Debian-Security" in p for p in patterns), patterns


# --- System settings -----------------------------------------------------------------------------


def test_sysctl_file_is_written(host):
    conf = host.file("/etc/sysctl.d/90-platform.conf")
    assert conf.mode == 0o644
    assert "net.ipv4.tcp_syncookies = 1" in conf.content_string
    assert "fs.inotify.max_user_watches = 524288" in conf.content_string
    # Neither host is in group docker: both are declared non-routers.
    assert "net.ipv4.ip_forward = 0" in conf.content_string


def test_journald_drop_in_is_effective(host):
    assert host.file("/etc/systemd/journald.conf.d/90-platform.conf").exists
    merged = host.check_output("systemd-analyze cat-config systemd/journald.conf")
    assert "SystemMaxUse=512M" in merged


def test_hosts_file_lists_every_host(host):
    for name, address in ADDRESSES.items():
        assert host.check_output(f"getent hosts {name}.{DOMAIN}").split() == [
            address,
            f"{name}.{DOMAIN}",
            name,
        ]


# --- Sizing fact ---------------------------------------------------------------------------------


def test_sizing_fact_reports_container_limits(host):
    # molecule.yml gives each droplet 1 GiB and 1 CPU on a machine with far more of both.
    fact = host.ansible("setup", "gather_subset=!all,!min,local", check=False)["ansible_facts"]
    platform = fact["ansible_local"]["platform"]
    assert platform["memory_mb"] == 1024, platform
    assert platform["memory_source"] == "cgroup", platform
    assert platform["vcpus"] == 1, platform
    assert platform["cpu_source"] == "cgroup", platform
    assert platform["host_memory_mb"] > 1024, platform
    assert host.file("/etc/ansible/facts.d/platform.fact").mode == 0o755
