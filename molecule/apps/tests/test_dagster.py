"""Verify the dagster role: ap-apps1 serves Dagster behind nginx (TLS, two users), its runs stored in
ap-pg1's PostgreSQL over TLS.

Refusals, TLS and runs launched as each user are checked from the controller (the scenario's VPC
gateway, inside platform_vpc_cidr), as a browser would reach them; the loopback rules and the
services from inside the droplets.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = ["ap-apps1"]

ADDRESS = "10.201.20.11"
URL = f"https://{ADDRESS}:3070"
OPERATOR = ("operator", "moleculedagsteroperator0123456789")
VIEWER = ("viewer", "moleculedagsterviewer0123456789")
CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki" / "ca.crt"
SERVICES = ("dagster-code-server", "dagster-webserver", "dagster-viewer", "dagster-daemon", "nginx")

LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on UnauthorizedError { message }
  ... on PythonError { message } } }"""
HEARTBEAT = {"selector": {"repositoryLocationName": "pipelines", "repositoryName": "__repository__",
                          "jobName": "heartbeat"}, "runConfigData": {}}


def _request(path: str, user: tuple[str, str] | None, body: dict | None = None,
             cafile: Path | None = CA) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if user:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(user).encode()).decode()
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl.create_default_context()
    request = urllib.request.Request(URL + path, headers=headers,
                                     data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(request, context=context, timeout=20) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def _graphql(user: tuple[str, str], query: str, variables: dict | None = None) -> dict:
    status, body = _request("/graphql", user, {"query": query, "variables": variables or {}})
    assert status == 200, body[:500]
    answer = json.loads(body)
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def _run_status(run_id: str) -> str:
    data = _graphql(VIEWER, "query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { status } } }",
                    {"id": run_id})
    return data["runOrError"]["status"]


def test_services_run_as_the_service_account_and_sandboxed(host):
    for name in SERVICES:
        service = host.service(name)
        if not (service.is_enabled and service.is_running):
            pytest.fail(host.run(f"journalctl -u {name} --no-pager -n 40").stdout)
    assert host.user("dagster").shell == "/usr/sbin/nologin"
    for name in SERVICES[:4]:
        shown = dict(line.split("=", 1) for line in host.check_output(
            f"systemctl show {name} -p User -p ProtectSystem -p NoNewPrivileges -p CapabilityBoundingSet").splitlines())
        assert shown["User"] == "dagster", name
        assert shown["ProtectSystem"] == "strict", name
        assert shown["NoNewPrivileges"] == "yes", name
        assert shown["CapabilityBoundingSet"] == "", name


def test_instance_settings_are_private_and_telemetry_off(host):
    settings = host.file("/etc/dagster/dagster.yaml")
    assert (settings.user, settings.group, settings.mode) == ("root", "dagster", 0o640)
    text = host.check_output("cat /etc/dagster/dagster.yaml")
    assert "telemetry:\n  enabled: false" in text
    assert "sslmode: verify-full" in text
    assert not host.file("/etc/dagster/.telemetry").exists
    htpasswd = host.file("/etc/nginx/dagster.htpasswd")
    assert (htpasswd.user, htpasswd.group, htpasswd.mode) == ("root", "www-data", 0o640)
    assert "moleculedagster" not in htpasswd.content_string  # hashes, not passwords



def test_proxy_refuses_without_or_with_wrong_credentials():
    assert _request("/server_info", None)[0] == 401
    assert _request("/server_info", ("operator", "wrong-password-0123456789"))[0] == 401
    assert _request("/server_info", ("someone", OPERATOR[1]))[0] == 401
    assert _request("/graphql", None, {"query": "{ version }"})[0] == 401


def test_both_users_reach_their_webserver_over_verified_tls():
    for user in (OPERATOR, VIEWER):
        status, body = _request("/server_info", user)
        assert status == 200, body[:300]
        assert json.loads(body)["dagster_version"] == "1.13.27"


def test_certificate_is_refused_without_the_environments_ca():
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _request("/server_info", OPERATOR, cafile=Path("/etc/ssl/certs/ca-certificates.crt"))


def test_viewer_cannot_launch_a_run():
    data = _graphql(VIEWER, LAUNCH, {"params": HEARTBEAT})
    assert data["launchRun"]["__typename"] == "UnauthorizedError", data


def test_operator_launches_a_run_that_the_daemon_completes():
    data = _graphql(OPERATOR, LAUNCH, {"params": HEARTBEAT})
    assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data
    run_id = data["launchRun"]["run"]["runId"]
    deadline = time.monotonic() + 180
    status = _run_status(run_id)
    while status not in ("SUCCESS", "FAILURE", "CANCELED") and time.monotonic() < deadline:
        time.sleep(2)
        status = _run_status(run_id)
    assert status == "SUCCESS", f"run {run_id}: {status}"
    # The viewer sees it: both webservers read the one run storage.
    materialized = _graphql(VIEWER, '{ assetOrError(assetKey: {path: ["platform_heartbeat"]}) {'
                                    ' ... on Asset { assetMaterializations(limit: 1) { runId } } } }')
    assert materialized["assetOrError"]["assetMaterializations"][0]["runId"] == run_id


def test_the_example_pipelines_load_with_the_manifest_built_at_deploy(host):
    # @dbt_assets reads the manifest the role's `dbt parse` built: the orders job and its sensor are
    # there only if it did. With no MinIO in the scenario, the sensor skips and says why.
    manifest = host.file("/opt/platform/dagster/dbt-manifest/manifest.json")
    assert (manifest.user, manifest.mode) == ("root", 0o644)
    assert json.loads(manifest.content_string)["metadata"]["project_name"] == "orders"
    environment = host.file("/etc/dagster/pipelines.env")
    assert (environment.user, environment.group, environment.mode) == ("root", "dagster", 0o640)
    query = """{ repositoryOrError(repositorySelector: {repositoryLocationName: "pipelines",
                                                        repositoryName: "__repository__"}) {
      ... on Repository { jobs { name }
                          sensors { name sensorState { status ticks(limit: 1) { status skipReason } } } } } }"""
    deadline = time.monotonic() + 120
    while True:
        repository = _graphql(VIEWER, query)["repositoryOrError"]
        sensors = {s["name"]: s["sensorState"] for s in repository["sensors"]}
        # A tick still being evaluated is STARTED, with no skip reason yet: wait for an ended one.
        ticks = [t for t in sensors["landing_orders_sensor"]["ticks"] if t["status"] != "STARTED"]
        if ticks or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert {"heartbeat", "orders"} <= {j["name"] for j in repository["jobs"]}
    assert sensors["landing_orders_sensor"]["status"] == "RUNNING"
    assert ticks, "no ended tick of the landing sensor"
    assert ticks[0]["status"] == "SKIPPED", ticks
    assert "no landing store" in ticks[0]["skipReason"], ticks


def test_webservers_and_code_server_are_not_reachable_from_another_host():
    pg1 = testinfra.get_host("ansible://ap-pg1", ansible_inventory=INVENTORY)
    for port in (3001, 3002, 4000):
        assert not pg1.run(f"timeout 2 bash -c '</dev/tcp/{ADDRESS}/{port}'").succeeded, port
    # The proxy's port is open to the VPC.
    assert pg1.run(f"timeout 5 bash -c '</dev/tcp/{ADDRESS}/3070'").succeeded


def test_loopback_webservers_refuse_other_local_accounts(host):
    probe = "import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('connected')"
    for port in (3001, 3002):
        other = host.run(f"runuser -u nobody -- python3 -c \"{probe.format(port=port)}\"")
        assert other.rc != 0, other.stdout
        assert "Connection refused" in other.stderr, other.stderr
        proxy = host.run(f"runuser -u www-data -- python3 -c \"{probe.format(port=port)}\"")
        assert proxy.stdout.strip() == "connected", proxy.stderr
    # The code server has no TCP port at all: a Unix socket in a directory of the service account.
    socket_dir = host.file("/run/dagster-code")
    assert (socket_dir.user, socket_dir.mode) == ("dagster", 0o700)
    assert host.socket("unix:///run/dagster-code/grpc.sock").is_listening


def test_run_storage_is_postgresql_over_tls():
    pg1 = testinfra.get_host("ansible://ap-pg1", ansible_inventory=INVENTORY)
    query = ("SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
             " WHERE a.datname = 'dagster' AND a.client_addr = '10.201.20.11'")
    ssl_connections, connections = pg1.check_output(
        f"runuser -u postgres -- psql -XAt -F ' ' -c \"{query}\"").split()
    assert int(connections) > 0
    assert ssl_connections == connections
    runs = pg1.check_output("runuser -u postgres -- psql -XAt -d dagster -c 'SELECT count(*) FROM runs'")
    assert int(runs) >= 1


PREDATES = Path(__file__).parents[3] / "roles" / "common" / "files" / "predates.py"
#: What each unit reads only when it starts, as tasks/service.yml hands it to common's restart_owed.
STARTUP_FILES = {
    "dagster-code-server": ["/etc/dagster/dagster.yaml", "/etc/dagster/pipelines.env",
                            "/etc/systemd/system/dagster-code-server.service", "/opt/platform/dagster/current",
                            "/opt/platform/dagster/code/**", "/opt/platform/dagster/dbt-manifest/manifest.json"],
    "dagster-webserver": ["/etc/dagster/dagster.yaml", "/etc/dagster/workspace.yaml",
                          "/etc/systemd/system/dagster-webserver.service", "/opt/platform/dagster/current"],
}


def test_a_restart_owed_by_a_killed_run_is_found(host):
    # A run killed between rewriting a file and its handler leaves a file newer than the service's
    # start: the next run's restart_owed sees "stale" and restarts it. Simulated by dating a file of
    # the code location (beneath the directory) and the virtualenv's link (the link itself) into the
    # future, then put back.
    host.ansible("copy", json.dumps({"src": str(PREDATES), "dest": "/root/predates.py", "mode": "0700"}),
                 check=False, become=True)

    def verdicts() -> dict[str, str]:
        return {unit: host.check_output(f"sudo python3 /root/predates.py {unit} {' '.join(files)}")
                for unit, files in STARTUP_FILES.items()}

    assert verdicts() == {"dagster-code-server": "current", "dagster-webserver": "current"}
    code = host.check_output("sudo find /opt/platform/dagster/code -mindepth 2 -name '*.py' -print -quit")
    future = int(time.time()) + 3600
    for path, flag in ((code, ""), ("/opt/platform/dagster/current", "-h")):
        before = host.check_output(f"sudo stat -c %Y {path}")  # a link's own time: stat does not follow it
        host.check_output(f"sudo touch {flag} -d @{future} {path}")
        try:
            seen = verdicts()
        finally:
            host.check_output(f"sudo touch {flag} -d @{before} {path}")
        expected = ({"dagster-code-server": "stale", "dagster-webserver": "current"} if path == code
                    else {"dagster-code-server": "stale", "dagster-webserver": "stale"})
        assert seen == expected, f"{path} dated {future}: {seen}"
    assert verdicts() == {"dagster-code-server": "current", "dagster-webserver": "current"}
