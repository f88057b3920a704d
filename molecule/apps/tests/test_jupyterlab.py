"""Verify the jupyterlab role: ap-apps1 serves JupyterLab over TLS with token authentication.

Refusals and TLS are checked from the controller (the scenario's VPC gateway, inside
platform_vpc_cidr); the kernels are driven through the server from inside the droplet
(kernel_exec.py, with the server's own virtualenv), as a browser drives them.
"""

from __future__ import annotations

import json
import os
import shlex
import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import testinfra

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = ["ap-apps1"]

ADDRESS = "10.201.20.11"
BASE = f"{ADDRESS}:8888"
TOKEN = "moleculejupyterlabtoken0123456789abcdef"
CA = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "pki" / "ca.crt"
VENV = "/opt/platform/jupyter/current"


def _status(url: str, headers: dict[str, str] | None = None, cafile: Path | None = CA) -> int:
    context = ssl.create_default_context(cafile=str(cafile)) if cafile else ssl.create_default_context()
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), context=context,
                                    timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as refused:
        return refused.code


def _json(url: str, headers: dict[str, str]) -> object:
    context = ssl.create_default_context(cafile=str(CA))
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), context=context, timeout=10) as answer:
        return json.load(answer)


def _kernel(host: testinfra.host.Host, kernel: str, code: str) -> str:
    script = (Path(__file__).parent / "kernel_exec.py").read_text()
    done = host.run(f"JUPYTER_TOKEN={TOKEN} {VENV}/bin/python -c {shlex.quote(script)} {BASE} {kernel} "
                    f"{shlex.quote(code)}")
    assert done.rc == 0, done.stderr
    return done.stdout


def test_service_runs_as_its_own_user_and_sandboxed(host):
    service = host.service("jupyterlab")
    if not (service.is_enabled and service.is_running):
        pytest.fail(host.run("journalctl -u jupyterlab --no-pager -n 50").stdout)
    assert host.user("jupyter").shell == "/usr/sbin/nologin"
    shown = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show jupyterlab -p User -p NoNewPrivileges -p ProtectSystem -p ProtectHome -p PrivateTmp"
        " -p CapabilityBoundingSet").splitlines())
    assert shown == {"User": "jupyter", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
                     "PrivateTmp": "yes", "CapabilityBoundingSet": ""}


def test_listens_on_the_private_address_only(host):
    listening = host.check_output("ss -Htln '( sport = :8888 )'").split()
    assert listening[3] == f"{ADDRESS}:8888"


@pytest.mark.parametrize(("headers", "expected"), [
    ({}, 403),
    ({"Authorization": "token wrong-token-wrong-token-wrong-token"}, 403),
    ({"Authorization": f"token {TOKEN}"}, 200),
], ids=["no token", "wrong token", "the token"])
def test_every_request_needs_the_token(headers, expected):
    assert _status(f"https://{BASE}/api/status", headers) == expected
    assert _status(f"https://{BASE}/api/contents", headers) == expected


def test_its_certificate_is_verified_against_the_environments_ca_only():
    assert _status(f"https://{BASE}/api/status", {"Authorization": f"token {TOKEN}"}) == 200
    # Without the environment's CA (the controller's default trust store) the handshake fails.
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _status(f"https://{BASE}/api/status", {"Authorization": f"token {TOKEN}"}, cafile=None)


def test_the_config_holding_the_token_is_readable_by_the_service_only(host):
    config = host.file("/etc/jupyterlab/jupyter_server_config.py")
    assert (config.user, config.group, config.mode) == ("root", "jupyter", 0o640)
    assert host.file("/etc/jupyterlab/tls/private.key").mode == 0o600


def test_the_virtualenv_is_the_locks_and_installed_from_the_wheelhouse(host):
    current = host.file(f"{VENV}")
    assert current.is_symlink
    version = current.linked_to.split("/")[-2]
    assert host.file(f"/opt/platform/jupyter/{version}/venv/.platform-installed").exists
    assert host.file(f"/opt/platform/jupyter/wheelhouses/{version}.tar").exists
    assert not host.file(f"/opt/platform/jupyter/{version}/wheels").exists
    assert host.check_output(f"{VENV}/bin/jupyter-lab --version").strip() == "4.6.6"


def test_the_python_kernel_has_the_platforms_libraries(host):
    code = ("import trino, pyiceberg, s3fs, pandas, polars, duckdb\n"
            "print(duckdb.connect().execute('select sum(x) from range(10) t(x)').fetchone()[0],\n"
            "      len(pandas.DataFrame({'a': [1, 2]})))")
    assert _kernel(host, "python3", code).split() == ["45", "2"]


def test_the_r_kernel_runs_with_the_packages_that_reach_trino(host):
    code = ("suppressPackageStartupMessages({library(curl); library(jsonlite)}); "
            "cat(nrow(mtcars), sum(1:10), toJSON(list(a = 1)))")
    assert _kernel(host, "ir", code).split() == ["32", "55", '{"a":[1]}']


def test_the_kernels_environment_names_the_analyst_and_no_store_without_minio(host):
    # The scenario has no Trino and no MinIO: the user is set, the host empty, no AWS_* variable.
    environment = host.file("/etc/jupyterlab/platform.env")
    assert (environment.user, environment.group, environment.mode) == ("root", "jupyter", 0o640)
    code = ("import os; print(os.environ['PLATFORM_TRINO_USER'], repr(os.environ['PLATFORM_TRINO_HOST']),"
            " sorted(k for k in os.environ if k.startswith('AWS_')))")
    assert _kernel(host, "python3", code).split() == ["analyst", "''", "[]"]


def test_nothing_phones_home(host):
    # No news feed and no update check configured: the server answers both from nothing.
    config = host.check_output("cat /etc/jupyterlab/jupyter_server_config.py")
    assert "c.LabApp.news_url = None" in config
    assert 'c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"' in config
    token = {"Authorization": f"token {TOKEN}"}
    assert _json(f"https://{BASE}/lab/api/news", token) == {"news": []}
    assert _json(f"https://{BASE}/lab/api/update", token) == {"notification": None}
