"""What the dagster role promises on the apps hosts, checked on the host over SSH."""

from __future__ import annotations

import json
import shlex

testinfra_hosts = ["ansible://apps"]

SERVICES = ("dagster-code-server", "dagster-webserver", "dagster-viewer", "nginx")
QUERY = ('{ workspaceOrError { ... on Workspace { locationEntries { name '
         'locationOrLoadError { __typename } } } } }')


def _url(hostvars, path: str) -> str:
    return f"https://{hostvars['platform_private_ip']}:{hostvars.get('dagster_port', 3070)}{path}"


def _curl(host, url: str, user: str | None, password: str | None, data: str | None = None) -> tuple[str, str]:
    """(HTTP status, body) through the proxy, the server verified against the host's trust store (which
    holds the environment's CA); the credentials travel in a curl config read from stdin."""
    config = f'user = "{user}:{password}"\n' if user else ""
    body = f" -H 'Content-Type: application/json' --data-binary {shlex.quote(data)}" if data else ""
    out = host.check_output(f"curl -sS -w '\\n%{{http_code}}' --max-time 20 -K - {shlex.quote(url)}{body}"
                            f" <<'EOF'\n{config}EOF")
    text, _, status = out.rpartition("\n")
    return status, text


def test_dagster_services_run_and_only_the_proxy_listens_beyond_loopback(host, hostvars):
    for service in SERVICES:
        assert host.service(service).is_running, service
    port = hostvars.get("dagster_port", 3070)
    listeners = host.check_output(f"ss -Htln 'sport = :{port}'").splitlines()
    assert [line.split()[3] for line in listeners] == [f"{hostvars['platform_private_ip']}:{port}"]


def test_dagster_daemon_runs_on_the_first_apps_host_only(host, hostvars):
    first = sorted(hostvars["groups"]["apps"])[0]
    assert host.service("dagster-daemon").is_running == (hostvars["inventory_hostname"] == first)


def test_dagster_proxy_refuses_without_credentials_and_serves_both_users_the_code_location(host, hostvars):
    assert _curl(host, _url(hostvars, "/server_info"), None, None)[0] == "401"
    assert _curl(host, _url(hostvars, "/server_info"), "operator", "not-the-password-not-the-password")[0] == "401"
    for user, key in ((hostvars.get("dagster_operator_user", "operator"), "vault_dagster_operator_password"),
                      (hostvars.get("dagster_viewer_user", "viewer"), "vault_dagster_viewer_password")):
        status, body = _curl(host, _url(hostvars, "/graphql"), user, hostvars[key], json.dumps({"query": QUERY}))
        assert status == "200", (user, body)
        entries = json.loads(body)["data"]["workspaceOrError"]["locationEntries"]
        assert [e["locationOrLoadError"]["__typename"] for e in entries] == ["RepositoryLocation"], (user, entries)


def test_dagster_code_location_environment_is_private_and_its_dbt_manifest_built(host, hostvars):
    # The environment file holds the pipelines' Trino password and the landing user's secret key.
    with host.sudo():  # /etc/dagster is root:dagster 0750
        environment = host.file("/etc/dagster/pipelines.env")
        assert (environment.user, environment.group, environment.mode) == ("root", "dagster", 0o640)
    if hostvars.get("dagster_dbt_project", "dbt"):  # a code location may have no dbt project
        manifest = host.file("/opt/platform/dagster/dbt-manifest/manifest.json")
        assert manifest.exists, "the deploy's `dbt parse` wrote no manifest"
