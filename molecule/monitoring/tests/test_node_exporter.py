"""Verify the node_exporter role on both droplets of the monitoring scenario: the service, then who
may reach it.

pm-mon1 is in group monitoring, pm-a (postgres) and pm-b (minio) are not; all sit on
10.201.16.0/24, the scenario's VPC. The test runner reaches that network from its gateway,
10.201.16.1: inside the VPC's range, in no group.
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

ADDRESSES = {"pm-mon1": "10.201.16.11", "pm-a": "10.201.16.12", "pm-b": "10.201.16.13"}
MONITORING = "pm-mon1"
PORT = 9100
USER = "node-exporter"
TEXTFILE_DIR = "/var/lib/node_exporter/textfile"
TEXTFILE_GROUP = "node-exporter-textfile"
# What prepare.yml had platform-ctl build: {"node_exporter": {"version": "v1.12.1", "sha256": ...}}.
ARTIFACT = json.loads((Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "artifacts.json").read_text())[
    "node_exporter"]
VERSION = ARTIFACT["version"].removeprefix("v")


def _get(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _journal(host: testinfra.host.Host) -> str:
    return host.run("journalctl -u node_exporter --no-pager -n 50").stdout


def _connect(host: testinfra.host.Host, address: str, port: int) -> str:
    """"ok" if ``host`` completes a TCP handshake with address:port within 2 s, else the error."""
    probe = f"import socket; socket.create_connection(({address!r}, {port}), timeout=2).close()"
    result = host.run(f"python3 -c {shlex.quote(probe)}")
    return "ok" if result.rc == 0 else (result.stderr.strip().splitlines() or ["?"])[-1]


def _scrape(name: str, from_host: str = MONITORING) -> str:
    """/metrics of ``name``, fetched from inside ``from_host`` as Prometheus would."""
    return _get(from_host).check_output(f"curl -sS --max-time 5 http://{ADDRESSES[name]}:{PORT}/metrics")


# --- The service ---------------------------------------------------------------------------------


def test_runs_as_its_own_user(host):
    service = host.service("node_exporter")
    if not (service.is_enabled and service.is_running):
        pytest.fail(f"node_exporter: enabled={service.is_enabled} running={service.is_running}\n{_journal(host)}")
    process = host.process.get(comm="node_exporter")
    assert process.user == USER
    user = host.user(USER)
    assert user.shell == "/usr/sbin/nologin"
    assert TEXTFILE_GROUP in user.groups


def test_unit_is_sandboxed(host):
    shown = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show node_exporter -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp"
        " -p CapabilityBoundingSet -p RestrictAddressFamilies").splitlines())
    assert shown["NoNewPrivileges"] == "yes"
    assert shown["ProtectSystem"] == "strict"
    assert shown["ProtectHome"] == "yes"
    assert shown["PrivateTmp"] == "yes"
    assert shown["CapabilityBoundingSet"] == ""
    assert set(shown["RestrictAddressFamilies"].split()) == {"AF_INET", "AF_INET6", "AF_UNIX", "AF_NETLINK"}


def test_binary_is_the_pinned_build(host):
    binary = host.file("/usr/local/bin/node_exporter")
    assert (binary.user, binary.group, binary.mode) == ("root", "root", 0o755)
    assert binary.sha256sum == ARTIFACT["sha256"]
    # The controller's build stamps the version (ldflags), as upstream's release builds do.
    assert host.check_output("/usr/local/bin/node_exporter --version 2>&1").splitlines()[0].startswith(
        f"node_exporter, version {VERSION} ")


def test_listens_only_on_the_private_address(host):
    name = host.backend.get_hostname()
    listening = host.check_output(f"ss -Hltn 'sport = :{PORT}'").splitlines()
    assert [line.split()[3] for line in listening] == [f"{ADDRESSES[name]}:{PORT}"], listening
    assert not host.socket(f"tcp://0.0.0.0:{PORT}").is_listening
    assert not host.socket(f"tcp://127.0.0.1:{PORT}").is_listening


def test_preflight_refuses_to_listen_on_every_address():
    # The role's own guard, before anything changes: converge.yml's preflight alone, on one host.
    converge = Path(__file__).resolve().parents[1] / "converge.yml"
    done = subprocess.run(
        ["ansible-playbook", "-i", INVENTORY, str(converge), "--limit", "pm-a", "--tags", "node_exporter_preflight",
         "-e", "node_exporter_listen_address=0.0.0.0"],
        capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    # The message as Ansible prints it: wrapped, quotes doubled.
    message = " ".join((done.stdout + done.stderr).split()).replace("''", "'")
    assert "node_exporter_listen_address is '0.0.0.0': node_exporter has no authentication" in message, message[-3000:]
    assert _get("pm-a").socket(f"tcp://{ADDRESSES['pm-a']}:{PORT}").is_listening


# --- Who reaches it ------------------------------------------------------------------------------


def test_firewall_admits_the_monitoring_host_only(host):
    listing = host.check_output("nft list chain inet platform_filter input")
    rules = [line.strip() for line in listing.splitlines() if f"dport {PORT}" in line]
    assert rules == [f'ip saddr {ADDRESSES[MONITORING]} tcp dport {PORT} accept comment "node_exporter"'], listing


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_the_monitoring_host_scrapes_every_host(name):
    metrics = _scrape(name)
    assert f'version="{VERSION}"' in next(line for line in metrics.splitlines()
                                          if line.startswith("node_exporter_build_info{"))
    # The systemd collector reads units over D-Bus, from inside the sandbox.
    assert any(line.startswith('node_systemd_unit_state{name="node_exporter.service",state="active"')
               and line.endswith(" 1") for line in metrics.splitlines()), metrics[-2000:]
    assert "node_textfile_scrape_error 0" in metrics
    assert "node_scrape_collector_success{collector=\"zfs\"}" not in metrics  # disabled by default


@pytest.mark.parametrize(("client", "target"), [("pm-a", "pm-b"), ("pm-b", "pm-a"), ("pm-a", "pm-mon1")])
def test_a_host_outside_monitoring_is_refused(client, target):
    # Its packets are dropped (a timeout), although both hosts are in the VPC: node_exporter has no
    # authentication, so only the monitoring hosts reach it. SSH proves the path itself works.
    assert _connect(_get(client), ADDRESSES[target], 22) == "ok"
    assert _connect(_get(client), ADDRESSES[target], PORT) == "TimeoutError: timed out"


@pytest.mark.parametrize("name", sorted(ADDRESSES))
def test_the_test_runner_is_refused(name):
    # The runner is on the network's gateway, inside the VPC's range but in no group.
    with pytest.raises(TimeoutError):
        socket.create_connection((ADDRESSES[name], PORT), timeout=2).close()


# --- Textfile collector --------------------------------------------------------------------------


def test_textfile_directory_is_writable_by_its_group(host):
    directory = host.file(TEXTFILE_DIR)
    assert (directory.user, directory.group, directory.mode) == ("root", TEXTFILE_GROUP, 0o2775)


def test_a_metric_written_by_a_group_member_is_exported():
    # As another role's service would: an unprivileged user in the group writes a temporary file and
    # renames it into place (node_exporter must never read a half-written file).
    target = _get("pm-a")
    name, stamp = "platform_molecule_last_success_timestamp_seconds", int(time.time())
    script = (f"printf '%s\\n' '# TYPE {name} gauge' '{name} {stamp}'"
              f" > {TEXTFILE_DIR}/molecule.prom.$$ && mv {TEXTFILE_DIR}/molecule.prom.$$ {TEXTFILE_DIR}/molecule.prom")
    target.check_output(f"setpriv --reuid=nobody --regid={TEXTFILE_GROUP} --clear-groups sh -c {shlex.quote(script)}")
    try:
        written = target.file(f"{TEXTFILE_DIR}/molecule.prom")
        assert (written.user, written.group) == ("nobody", TEXTFILE_GROUP)
        metrics = _scrape("pm-a")
        # Exported as node_exporter formats floats (1.795e+09): compared as a number.
        samples = [line.split()[1] for line in metrics.splitlines() if line.startswith(f"{name} ")]
        assert [float(sample) for sample in samples] == [stamp], samples
        assert "node_textfile_scrape_error 0" in metrics
    finally:
        target.run(f"rm -f {TEXTFILE_DIR}/molecule.prom")


def test_a_user_outside_the_group_cannot_write():
    result = _get("pm-a").run(
        f"setpriv --reuid=nobody --regid=nogroup --clear-groups touch {TEXTFILE_DIR}/intruder.prom")
    assert result.rc != 0
    assert "Permission denied" in result.stderr
