"""Verify the trino role: a coordinator and a worker over HTTPS, password authentication, tpch answers.

The test runner reaches both nodes on 10.201.14.0/24 (the scenario's VPC) from the network's
gateway, with the Trino Python client, TLS verified against the scenario's CA.
"""

from __future__ import annotations

import base64
import os
import socket
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import requests
import testinfra
import testinfra.utils.ansible_runner
import trino

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
_RUNNER = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY)
testinfra_hosts = _RUNNER.get_hosts("trino_coordinator") + _RUNNER.get_hosts("trino_worker")

CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki" / "ca.crt"
COORDINATOR = "10.201.14.11"
WORKER = "10.201.14.12"
PORT = 8443
PASSWORD = "molecule-trino-admin-0123456789"
PASSWORDS = {"admin": PASSWORD, "pipelines": "molecule-trino-pipelines-0123456789",  # molecule.yml
             "analyst": "molecule-trino-analyst-0123456789", "monitoring": "molecule-trino-monitoring-0123456789"}
SHARED_SECRET = "molecule-trino-shared-secret-0123456789-0123456789"  # molecule.yml


def _get(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _connect(user: str = "admin", password: str = PASSWORD) -> trino.dbapi.Connection:
    # trust_env off: requests would let REQUESTS_CA_BUNDLE (the machine's public CAs) override the
    # session's CA file, and environment proxies have no business on the VPC.
    session = requests.Session()
    session.trust_env = False
    session.verify = str(CA)
    return trino.dbapi.connect(host=COORDINATOR, port=PORT, user=user, http_scheme="https",
                               auth=trino.auth.BasicAuthentication(user, password), http_session=session,
                               request_timeout=60)


def _query(sql: str, user: str = "admin") -> list[list]:
    cursor = _connect(user, PASSWORDS[user]).cursor()
    cursor.execute(sql)
    return cursor.fetchall()


def _status(method: str, url: str, user: str | None, body: bytes | None = None) -> int:
    context = ssl.create_default_context(cafile=str(CA))
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{PASSWORDS[user]}".encode()).decode()
    request = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_runs_as_trino_with_the_recommended_limits(host):
    service = host.service("trino")
    assert service.is_enabled
    assert service.is_running
    java = host.process.get(comm="trino-server-co")
    assert java.user == "trino"
    # The unit asks for Trino's recommended limits; the process gets them up to the hard limits the
    # container itself runs under (on this machine 20000 open files: the Docker daemon's own).
    assert host.check_output("systemctl show trino -p LimitNOFILE -p LimitNPROC").split() == [
        "LimitNOFILE=131072", "LimitNPROC=128000"]
    def hard(pid: int) -> dict[str, int]:
        lines = host.file(f"/proc/{pid}/limits").content_string.splitlines()
        return {line.split()[-1]: int(line.split()[-2]) for line in lines
                if line.startswith(("Max open files", "Max processes"))}

    ceiling = hard(1)  # systemd's own: the container's
    assert hard(java.pid) == {"files": min(131072, ceiling["files"]), "processes": min(128000, ceiling["processes"])}


def test_heap_is_sized_from_the_container_limit(host):
    # 2 GiB container → 70 % = 1433 MiB heap; per-node query memory and headroom 30 % of it.
    jvm = host.file("/etc/trino/jvm.config").content_string
    assert "-Xmx1433M" in jvm
    config = host.file("/etc/trino/config.properties").content_string
    assert "query.max-memory-per-node=429MB" in config
    assert "memory.heap-headroom-per-node=429MB" in config
    # A ceiling of 64 nodes' worth that does not follow the worker count (README "Memory").
    assert "query.max-memory=27456MB" in config


def test_the_extra_jvm_options_come_last_and_reach_the_running_jvm(host):
    # trino_jvm_extra_options (molecule.yml: C1 alone) after the role's own options.
    options = [line for line in host.file("/etc/trino/jvm.config").content_string.splitlines()
               if line and not line.startswith("#")]
    assert options[-1] == "-XX:TieredStopAtLevel=1", options
    java = host.process.get(comm="trino-server-co")
    assert "-XX:TieredStopAtLevel=1" in host.file(f"/proc/{java.pid}/cmdline").content_string.split("\0")


def test_secrets_stay_out_of_the_configuration_files(host):
    for path in ("/etc/trino/config.properties", "/etc/trino/jvm.config", "/etc/trino/node.properties"):
        assert "molecule-trino-shared-secret" not in host.file(path).content_string, path
    env = host.file("/etc/trino/trino.env")
    assert (env.user, env.group, env.mode) == ("root", "trino", 0o640)
    assert "molecule-trino" not in host.run("journalctl -u trino --no-pager").stdout


def test_node_ids_are_stable_uuids(host):
    node = host.file("/etc/trino/node.properties").content_string
    assert "node.environment=molecule" in node
    assert len(next(line for line in node.splitlines() if line.startswith("node.id="))) == len("node.id=") + 36


def test_password_file_holds_bcrypt_hashes_only():
    coordinator = _get("trino-coord1")
    content = coordinator.file("/etc/trino/password.db").content_string
    assert content.startswith("admin:$2y$10$")
    assert PASSWORD not in content


def test_every_node_is_active():
    rows = _query("SELECT node_id, coordinator, state FROM system.runtime.nodes ORDER BY coordinator DESC")
    assert [(coordinator, state) for _, coordinator, state in rows] == [
        (True, "active"), (False, "active")]


def test_a_changed_worker_was_shut_down_gracefully_before_its_restart():
    # side_effect.yml changed trino-worker1's shutdown.grace-period: the handler put the worker in
    # SHUTTING_DOWN, waited for it to exit by itself, then started it.
    worker = _get("trino-worker1")
    assert "shutdown.grace-period=4s" in worker.file("/etc/trino/config.properties").content_string
    journal = worker.check_output("journalctl -u trino --no-pager -o cat")
    assert "Shutdown requested" in journal
    after = journal[journal.rindex("Shutdown requested"):]
    assert "Deactivated successfully" in after  # systemd: it exited with status 0, not by a kill
    assert worker.service("trino").is_running


def test_a_query_runs_its_splits_on_the_worker_and_none_on_the_coordinator():
    cursor = _connect().cursor()
    cursor.execute("SELECT count(*) FROM tpch.tiny.lineitem")
    assert cursor.fetchall() == [[60175]]  # TPC-H: 6,001,215 lineitem rows at scale 1, 1 % in tiny
    rows = _query(f"SELECT n.coordinator, t.node_id, sum(t.splits) FROM system.runtime.tasks t"
                  f" JOIN system.runtime.nodes n ON n.node_id = t.node_id WHERE t.query_id = '{cursor.query_id}'"
                  f" GROUP BY 1, 2")
    workers = [(node, splits) for coordinator, node, splits in rows if not coordinator]
    assert [coordinator for coordinator, _, _ in rows if coordinator] == []
    assert len(workers) == 1, rows
    assert workers[0][1] > 0, rows


def _internal_auth_module():
    """roles/trino's trino_internal_auth module (the role checks every node with it on each run)."""
    import importlib.util

    path = Path(__file__).resolve().parents[3] / "roles/trino/library/trino_internal_auth.py"
    spec = importlib.util.spec_from_file_location("trino_internal_auth", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("node", [COORDINATOR, WORKER])
def test_internal_requests_need_the_shared_secret(node):
    # What a peer sends (an X-Trino-Internal-Bearer JWT keyed with the secret) is accepted; the same
    # request signed with another secret is refused, as a replaced secret is after a rotation.
    auth = _internal_auth_module()
    context = ssl.create_default_context(cafile=str(CA))
    url = f"https://{node}:{PORT}"
    assert auth.status_of(url, context, auth.internal_token(SHARED_SECRET, "molecule")) == 200
    assert auth.status_of(url, context, auth.internal_token(SHARED_SECRET + "-old", "molecule")) == 401


def test_wrong_password_and_no_password_are_refused():
    with pytest.raises(trino.exceptions.HttpError, match="401"):
        _connect(password="not-the-password-0123456789").cursor().execute("SELECT 1")
    context = ssl.create_default_context(cafile=str(CA))
    request = urllib.request.Request(f"https://{COORDINATOR}:{PORT}/v1/statement", data=b"SELECT 1",
                                     headers={"X-Trino-User": "admin"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, context=context, timeout=30)
    assert refused.value.code == 401


@pytest.mark.parametrize("address", [COORDINATOR, WORKER])
def test_plain_http_is_not_served(address: str):
    # HTTP is off on every node: the HTTPS port answers a plain request with no HTTP response (a TLS
    # alert at most), and Trino's usual HTTP port 8080 is closed.
    with socket.create_connection((address, PORT), timeout=10) as conn:
        conn.sendall(b"GET /v1/info HTTP/1.1\r\nHost: x\r\n\r\n")
        conn.settimeout(10)
        try:
            reply = conn.recv(64)
        except (ConnectionResetError, TimeoutError):  # no answer at all is no HTTP either
            reply = b""
    assert not reply.startswith(b"HTTP/"), reply
    with pytest.raises((ConnectionRefusedError, TimeoutError)):  # the host firewall drops it
        socket.create_connection((address, 8080), timeout=2).close()
    name = {COORDINATOR: "trino-coord1", WORKER: "trino-worker1"}[address]
    assert not _get(name).socket("tcp://0.0.0.0:8080").is_listening


def test_a_workers_state_is_changed_by_admin_only():
    # Every node checks passwords, and a worker's rules let admin alone write system information:
    # without a password, or as another user, the graceful shutdown request is refused (the worker
    # keeps running). admin's own request is side_effect.yml's drain above.
    url = f"https://{WORKER}:{PORT}/v1/info/state"
    assert _status("PUT", url, None, b'"SHUTTING_DOWN"') == 401
    for user in ("analyst", "pipelines", "monitoring"):
        assert _status("PUT", url, user, b'"SHUTTING_DOWN"') == 403, user
    assert _status("GET", url, "admin") == 200
    assert _query("SELECT state FROM system.runtime.nodes WHERE NOT coordinator") == [["active"]]


@pytest.mark.parametrize("node", [COORDINATOR, WORKER])
def test_metrics_are_for_admin_and_monitoring_only(node):
    url = f"https://{node}:{PORT}/metrics"
    assert _status("GET", url, "monitoring") == 200
    assert _status("GET", url, "admin") == 200
    assert _status("GET", url, "analyst") == 403
    assert _status("GET", url, None) == 401


def test_monitoring_runs_no_query_and_the_others_run_theirs():
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        _query("SELECT 1", "monitoring")
    for user in ("analyst", "pipelines"):
        assert _query("SELECT count(*) FROM tpch.tiny.nation", user) == [[25]], user
    # Catalogs that no rule gives them stay hidden; tpch and system are read-only to them.
    assert sorted(_query("SHOW CATALOGS", "analyst")) == [["system"], ["tpch"]]
    with pytest.raises(trino.exceptions.TrinoUserError, match="Access Denied"):
        _query("CREATE TABLE tpch.tiny.copy AS SELECT * FROM tpch.tiny.nation", "analyst")
