"""`platform-ctl endpoints` and `platform-ctl credentials` on the shared e2e environment, from a client's
side: every URL listed answers over TLS verified against the CA bundle listed, with the credential
`credentials` prints, and refuses the same request without it.

The controller is on the emulator's VPC network (a materialised droplet's private address is its
public one), so the URLs work from here as they are. Cheap: a handful of HTTP requests, nothing
restarted, nothing changed on the hosts (Trino runs `SELECT 1`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import urllib3
import yaml
from minio import Minio
from minio.error import S3Error

pytestmark = pytest.mark.e2e

TIMEOUT = 15
#: What a service without authentication answers on (Prometheus' and Alertmanager's health).
HEALTH = "-/healthy"


@pytest.fixture(scope="module")
def listed(deployed) -> dict[str, Any]:
    run = deployed.cli("endpoints", deployed.env, "--json")
    assert run.rc == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return json.loads(run.stdout)


def _services(listed: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["service"]: s for s in listed["services"]}


def _secret(deployed, service: str) -> str:
    run = deployed.cli("credentials", deployed.env, service)
    assert run.rc == 0, run.stderr[-2000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 1, "credentials prints the secret alone on one line"
    assert lines[0]
    return lines[0]


def _grafana_installed(deployed) -> bool:
    """Whether the environment installs Grafana (the local settings it copies set grafana_install: false)."""
    path = deployed.project / "inventories" / deployed.env / "group_vars" / "all" / "main.yml"
    settings = yaml.safe_load(path.read_text()) if path.exists() else {}
    return bool((settings or {}).get("grafana_install", True))


def test_every_service_of_the_environment_is_listed_with_the_environments_ca(deployed, cluster, listed) -> None:
    assert listed["env"] == deployed.env
    grafana = {"grafana"} if _grafana_installed(deployed) else set()
    assert set(_services(listed)) == {"trino", "trino-analyst", "minio", "minio-console", "prometheus", "alertmanager",
                                      "jupyterlab", "dagster", "dagster-viewer"} | grafana
    bundle = (deployed.state / "pki" / "trusted.crt").read_text()
    assert listed["ca"] == str(deployed.state / "pki" / "trusted.crt")
    assert cluster.ca.read_text().strip() in bundle  # the signing CA is trusted
    addresses = cluster.addresses
    for service in _services(listed).values():
        assert f"//{addresses[service['host']]}:" in service["url"], service


def test_the_table_names_each_service(deployed, listed) -> None:
    run = deployed.cli("endpoints", deployed.env)
    assert run.rc == 0, run.stderr[-2000:]
    for service in _services(listed).values():
        assert service["url"] in run.stdout
    assert f"CA to trust: {listed['ca']}" in run.stdout


@pytest.mark.parametrize("service", ["trino", "trino-analyst"])
def test_trino_answers_each_user_and_refuses_a_request_without_its_password(deployed, listed, service: str) -> None:
    trino = _services(listed)[service]
    password = _secret(deployed, service)
    url = trino["url"] + "/v1/statement"
    headers = {"X-Trino-User": trino["user"]}
    refused = requests.post(url, data="SELECT 1", headers=headers, verify=listed["ca"], timeout=TIMEOUT)
    assert refused.status_code == 401, refused.text[:500]
    answer = requests.post(url, data="SELECT 1", headers=headers, auth=(trino["user"], password),
                           verify=listed["ca"], timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text[:500]
    page = answer.json()
    rows: list[Any] = list(page.get("data", []))
    while "nextUri" in page:  # follow the query to its end: nothing is left running
        page = requests.get(page["nextUri"], headers=headers, auth=(trino["user"], password), verify=listed["ca"],
                            timeout=TIMEOUT).json()
        rows += page.get("data", [])
    assert rows == [[1]], page
    wrong = requests.post(url, data="SELECT 1", headers=headers, auth=(trino["user"], password + "x"),
                          verify=listed["ca"], timeout=TIMEOUT)
    assert wrong.status_code == 401


def test_jupyterlab_answers_its_token_only(deployed, listed) -> None:
    jupyterlab = _services(listed)["jupyterlab"]
    token = _secret(deployed, "jupyterlab")
    status = jupyterlab["url"].removesuffix("/lab") + "/api/status"
    answer = requests.get(status, headers={"Authorization": f"token {token}"}, verify=listed["ca"], timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text[:500]
    assert "started" in answer.json()
    refused = requests.get(status, verify=listed["ca"], timeout=TIMEOUT)
    assert refused.status_code in (401, 403), refused.text[:500]
    lab = requests.get(jupyterlab["url"], headers={"Authorization": f"token {token}"}, verify=listed["ca"],
                       timeout=TIMEOUT)
    assert lab.status_code == 200


def _first_query() -> str:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- first-query:[^>]*-->\n```python\n(.*?)```", readme, re.S)
    assert block, "README.md has no first-query block"
    return block.group(1)


def test_the_readmes_first_query_runs_in_the_python_kernels_environment(deployed, listed) -> None:
    # The README's block as an analyst pastes it, with the trino-analyst row's address, run on the apps
    # host by the Python kernel's interpreter as the jupyter user; the password is typed on stdin.
    address = urlsplit(_services(listed)["trino-analyst"]["url"]).hostname
    code, n = re.subn(r'^TRINO_HOST = ".*"', f'TRINO_HOST = "{address}"', _first_query(), flags=re.M)
    assert n == 1, "the block sets TRINO_HOST on a line of its own"
    run = deployed.exec("apps1", "runuser", "-u", "jupyter", "--", "/opt/platform/jupyter/current/bin/python",
                        "-c", code, stdin=(_secret(deployed, "trino-analyst") + "\n").encode(), timeout=120)
    printed = run.stdout.decode()
    assert run.returncode == 0, printed[-2000:] + run.stderr.decode()[-2000:]
    counts = {line.split()[1]: int(line.split()[2]) for line in printed.splitlines()[1:]}
    assert counts == {"F": 7304, "O": 7333, "P": 363}, printed


@pytest.mark.parametrize("service", ["dagster", "dagster-viewer"])
def test_dagster_answers_each_user_its_own_password_only(deployed, listed, service: str) -> None:
    dagster = _services(listed)[service]
    password = _secret(deployed, service)
    url = dagster["url"].rstrip("/") + "/server_info"
    answer = requests.get(url, auth=(dagster["user"], password), verify=listed["ca"], timeout=TIMEOUT)
    assert answer.status_code == 200, answer.text[:500]
    assert answer.json()["dagster_version"], answer.text[:500]
    refused = requests.get(url, verify=listed["ca"], timeout=TIMEOUT)
    assert refused.status_code == 401, refused.text[:500]
    wrong = requests.get(url, auth=(dagster["user"], password + "x"), verify=listed["ca"], timeout=TIMEOUT)
    assert wrong.status_code == 401


def test_minio_lists_buckets_for_the_root_user_and_refuses_anonymous_requests(deployed, listed) -> None:
    minio = _services(listed)["minio"]
    password = _secret(deployed, "minio")
    endpoint = minio["url"].removeprefix("https://")
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=listed["ca"], timeout=TIMEOUT, retries=False)
    client = Minio(endpoint, minio["user"], password, secure=True, http_client=http)
    assert "warehouse" in {b.name for b in client.list_buckets()}
    refused = requests.get(minio["url"] + "/", verify=listed["ca"], timeout=TIMEOUT)
    assert refused.status_code == 403, refused.text[:500]
    assert "AccessDenied" in refused.text
    with pytest.raises(S3Error):
        Minio(endpoint, minio["user"], password + "x", secure=True, http_client=http).list_buckets()


def test_the_minio_console_logs_the_root_user_in(deployed, listed) -> None:
    # The console's own API (github.com/minio/console, restapi): POST /api/v1/login sets a session
    # cookie; /api/v1/session answers 401 without one.
    console = _services(listed)["minio-console"]
    password = _secret(deployed, "minio-console")
    base = console["url"].rstrip("/")
    login = requests.post(f"{base}/api/v1/login", json={"accessKey": console["user"], "secretKey": password},
                          verify=listed["ca"], timeout=TIMEOUT)
    assert login.status_code in (200, 204), login.text[:500]
    session = requests.get(f"{base}/api/v1/session", cookies=login.cookies, verify=listed["ca"], timeout=TIMEOUT)
    assert session.status_code == 200, session.text[:500]
    refused = requests.get(f"{base}/api/v1/session", verify=listed["ca"], timeout=TIMEOUT)
    assert refused.status_code in (401, 403)
    wrong = requests.post(f"{base}/api/v1/login", json={"accessKey": console["user"], "secretKey": password + "x"},
                          verify=listed["ca"], timeout=TIMEOUT)
    assert wrong.status_code in (401, 403)


def test_grafana_answers_its_admin_only_where_it_is_installed(deployed, listed) -> None:
    if not _grafana_installed(deployed):  # the local settings: apt.grafana.com is not reachable from here
        assert "grafana" not in _services(listed)
        run = deployed.cli("credentials", deployed.env, "grafana")
        assert run.rc == 2
        assert "is not installed" in run.stderr
        return
    grafana = _services(listed)["grafana"]
    password = _secret(deployed, "grafana")
    user = requests.get(grafana["url"] + "api/user", auth=(grafana["user"], password), timeout=TIMEOUT)
    assert user.status_code == 200, user.text[:500]
    assert user.json()["login"] == grafana["user"]
    assert requests.get(grafana["url"] + "api/user", timeout=TIMEOUT).status_code == 401


@pytest.mark.parametrize("service", ["prometheus", "alertmanager"])
def test_services_without_a_credential_answer_at_their_url_and_have_none(deployed, listed, service: str) -> None:
    listed_service = _services(listed)[service]
    assert listed_service["credential"] == "none (VPC only)"
    assert requests.get(listed_service["url"] + HEALTH, timeout=TIMEOUT).status_code == 200
    run = deployed.cli("credentials", deployed.env, service)
    assert run.rc == 2
    assert "has no authentication" in run.stderr
