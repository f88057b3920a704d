"""Verify the grafana role on pm-mon1 as the local environment runs it (grafana_install: false).

The package is not installed (apt.grafana.com is unreachable from here): what is checked is every
file the role writes, the account it creates in the package's stead, that nothing of the production
path was half-done, and that the skip is said in the play's custom stats, where the deploy summary
reads it. The scenario's postgres host (pm-a) makes Grafana's database and its SQL data source
PostgreSQL's, as in an environment with a postgres host.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = ["pm-mon1"]

ADMIN_PASSWORD = "molecule-grafana-admin-0123456789"  # molecule.yml's vault_grafana_admin_password
PRIVATE_IP = "10.201.16.11"
DATABASE_HOST = "pm-a.molecule.platform.internal"
DASHBOARDS = {"hosts.json", "minio.json", "platform-overview.json", "postgresql.json", "trino.json"}
ROLE_DASHBOARDS = Path(__file__).resolve().parents[3] / "roles" / "grafana" / "files" / "dashboards"


def _ini(host) -> dict[str, dict[str, str]]:
    """grafana.ini as sections of key = value (comments and blank lines dropped)."""
    sections: dict[str, dict[str, str]] = {}
    current = sections.setdefault("", {})
    for raw in host.file("/etc/grafana/grafana.ini").content_string.splitlines():
        line = raw.strip()
        if not line or line.startswith((";", "#")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = value.strip()
    return sections


def test_account_exists_without_the_package(host):
    assert not host.package("grafana").is_installed
    user = host.user("grafana")
    assert user.group == "grafana"
    assert user.shell == "/bin/false"
    assert user.uid < 1000  # a system account, as the package's


def test_nothing_of_the_production_path_was_done(host):
    for path in ("/etc/apt/sources.list.d/grafana.sources", "/etc/apt/keyrings/grafana.asc",
                 "/etc/apt/preferences.d/grafana.pref", "/etc/systemd/system/grafana-server.service.d"):
        assert not host.file(path).exists, path
    assert not host.socket(f"tcp://{PRIVATE_IP}:3000").is_listening


def test_grafana_ini_holds_the_vault_password_readable_by_grafana_only(host):
    ini = host.file("/etc/grafana/grafana.ini")
    assert (ini.user, ini.group, ini.mode) == ("root", "grafana", 0o640)
    settings = _ini(host)
    assert settings["security"]["admin_user"] == "admin"
    assert settings["security"]["admin_password"] == f'"""{ADMIN_PASSWORD}"""'
    assert settings["server"]["http_addr"] == PRIVATE_IP
    assert settings["server"]["http_port"] == "3000"
    assert settings["users"]["allow_sign_up"] == "false"
    assert settings["auth.anonymous"]["enabled"] == "false"
    # No traffic to grafana.com.
    for key in ("reporting_enabled", "check_for_updates", "check_for_plugin_updates"):
        assert settings["analytics"][key] == "false", key
    assert settings["plugins"]["preinstall_disabled"] == "true"
    # The postgres host's `grafana` database, over TLS, the server's name checked against the CA.
    database = settings["database"]
    assert (database["type"], database["host"], database["name"], database["user"]) == (
        "postgres", f"{DATABASE_HOST}:5432", "grafana", "grafana")
    assert database["password"] == '"""molecule-grafana-db-0123456789"""'
    assert (database["ssl_mode"], database["server_cert_name"]) == ("verify-full", DATABASE_HOST)


def test_datasources_name_the_monitoring_hosts_prometheus(host):
    provisioned = host.file("/etc/grafana/provisioning/datasources/platform.yaml")
    assert (provisioned.user, provisioned.group, provisioned.mode) == ("root", "grafana", 0o640)
    document = yaml.safe_load(provisioned.content_string)
    by_uid = {source["uid"]: source for source in document["datasources"]}
    # With a postgres host, a PostgreSQL data source too, as its read-only monitoring login.
    assert set(by_uid) == {"prometheus", "postgresql"}
    postgresql = by_uid["postgresql"]
    assert (postgresql["url"], postgresql["user"], postgresql["jsonData"]["database"]) == (
        f"{DATABASE_HOST}:5432", "grafana_reader", "postgres")
    assert postgresql["jsonData"]["sslmode"] == "verify-full"
    assert postgresql["secureJsonData"] == {"password": "molecule-grafana-reader-0123456789"}
    assert by_uid["prometheus"]["url"] == f"http://{PRIVATE_IP}:9090"
    assert by_uid["prometheus"]["type"] == "prometheus"
    assert by_uid["prometheus"]["isDefault"] is True


def test_dashboards_provider_reads_the_dashboards_directory(host):
    provider = host.file("/etc/grafana/provisioning/dashboards/platform.yaml")
    assert (provider.user, provider.group, provider.mode) == ("root", "grafana", 0o644)
    document = yaml.safe_load(provider.content_string)
    assert [p["options"]["path"] for p in document["providers"]] == ["/var/lib/grafana/dashboards"]


def test_dashboards_are_the_five_of_the_role(host):
    directory = host.file("/var/lib/grafana/dashboards")
    assert (directory.user, directory.group, directory.mode) == ("root", "grafana", 0o750)
    assert set(directory.listdir()) == DASHBOARDS
    for name in DASHBOARDS:
        installed = host.file(f"/var/lib/grafana/dashboards/{name}")
        assert (installed.user, installed.group, installed.mode) == ("root", "grafana", 0o644)
        assert json.loads(installed.content_string) == json.loads((ROLE_DASHBOARDS / name).read_text())


def test_data_and_log_directories_belong_to_grafana(host):
    for path in ("/var/lib/grafana", "/var/log/grafana", "/var/lib/grafana/plugins"):
        directory = host.file(path)
        assert (directory.user, directory.group, directory.mode) == ("grafana", "grafana", 0o750), path


def test_the_skip_is_said_in_the_custom_stats():
    # The json callback prints the play's aggregated set_stats, what platform-ctl's summary reads.
    play = Path(__file__).resolve().parents[1] / "notice.yml"
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_SHOW_CUSTOM_STATS="true")
    done = subprocess.run(["ansible-playbook", "-i", INVENTORY, str(play)],
                          capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout)
    notices = result["global_custom_stats"]["platform_notices"]
    assert notices == [
        "grafana: install skipped on pm-mon1 (grafana_install: false): Grafana's APT repository is not reachable"
        " from this environment; configuration and dashboards were written to /etc/grafana and"
        " /var/lib/grafana/dashboards"
    ]
    assert result["stats"]["pm-mon1"]["changed"] == 0
