"""The grafana role's dashboards, their PromQL, and the files its templates render.

Every dashboard is valid JSON with its own uid, names only provisioned data sources, and every
expression (panels, nested rows, templating variables) parses once Grafana's variables are
substituted, checked by promtool. Whether each expression also returns series is the end-to-end
suite's part (a live Prometheus); platform_ctl.promql serves both.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform_ctl.promql import (
    dashboard_expressions,
    recording_rules_document,
    rule_expressions,
    substitute_grafana_variables,
    variable_query_expression,
)

ROLE = Path(__file__).resolve().parents[2] / "roles" / "grafana"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text(encoding="utf-8"))
VARS = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
DASHBOARDS_DIR = ROLE / "files" / "dashboards"
EXPECTED = {"platform-overview", "hosts", "minio", "postgresql", "trino"}


def _dashboards() -> list[Path]:
    return sorted(DASHBOARDS_DIR.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _trusted(value: Any) -> Any:
    """Role variables as Ansible reads them from a role: strings are templates."""
    from ansible.template import trust_as_template

    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {key: _trusted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_trusted(item) for item in value]
    return value


def _render(template: str, templates: Path = ROLE / "templates", **overrides: Any) -> str:
    """Render one of the role's templates with its defaults and vars, as on a monitoring host."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    variables: dict[str, Any] = {}
    for part in ("defaults", "vars"):
        variables.update(_trusted(yaml.safe_load((ROLE / part / "main.yml").read_text(encoding="utf-8"))))
    variables.update({
        "platform_private_ip": "10.10.0.5", "platform_env": "test", "platform_domain": "test.platform.internal",
        "inventory_hostname": "mon1", "groups": {"monitoring": ["mon1"], "postgres": ["pg1"]},
        "vault_grafana_admin_password": "admin-secret-0123456789",
        "vault_grafana_secret_key": "secret-key-0123456789abcdef0123456789",
        "vault_postgres_grafana_password": "db-secret-0123456789",
        "vault_postgres_grafana_reader_password": "reader-secret-0123456789",
        "ansible_managed": "Ansible managed",
    })
    variables.update(overrides)
    templar = Templar(loader=DataLoader(), variables=variables)
    rendered = templar.template(trust_as_template((templates / template).read_text(encoding="utf-8")))
    assert isinstance(rendered, str)
    return rendered


def _provisioned_uids(**overrides: Any) -> set[str]:
    document = yaml.safe_load(_render("datasources.yaml.j2", **overrides))
    return {source["uid"] for source in document["datasources"]}


# --- Dashboards -----------------------------------------------------------------------------------


def test_the_five_dashboards_exist_and_the_role_installs_them():
    assert {path.stem for path in _dashboards()} == EXPECTED
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    assert set(role_vars["_grafana_dashboards"]) == {f"{name}.json" for name in EXPECTED}


def test_dashboards_are_json_with_unique_uids_and_current_schema():
    uids = []
    for path in _dashboards():
        dashboard = _load(path)
        assert dashboard.get("title"), path.name
        assert re.fullmatch(r"[a-z0-9-]{1,40}", dashboard["uid"]), path.name
        assert dashboard["schemaVersion"] >= 39, path.name
        assert "id" not in dashboard, f"{path.name}: a provisioned dashboard has no fixed id"
        uids.append(dashboard["uid"])
    assert len(uids) == len(set(uids)), uids


def _datasource_refs(node: Any) -> list[Any]:
    """Every `datasource` value anywhere in a dashboard (panels, targets, variables)."""
    found = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource":
                found.append(value)
            else:
                found += _datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            found += _datasource_refs(item)
    return found


def test_every_datasource_reference_is_a_provisioned_uid():
    # The data sources of every environment: without a postgres host there is no PostgreSQL one, so
    # a shipped dashboard may not depend on it.
    provisioned = _provisioned_uids(groups={"monitoring": ["mon1"]})
    assert provisioned == {"prometheus"}
    for path in _dashboards():
        refs = _datasource_refs(_load(path))
        assert refs, path.name
        for ref in refs:
            # By uid, never by name or as the default (a renamed data source would break silently).
            assert isinstance(ref, dict), f"{path.name}: datasource {ref!r} is not a {{type, uid}} reference"
            assert ref.get("uid") in provisioned, f"{path.name}: datasource {ref!r}"


def test_every_panel_with_targets_has_expressions():
    for path in _dashboards():
        expressions = dashboard_expressions(path)
        panels_with_targets = [p for p in _load(path)["panels"] if p.get("targets")]
        assert {title for title, _ in expressions} >= {p["title"] for p in panels_with_targets}, path.name


def test_dashboard_variables_are_used_with_regex_matchers():
    # "All" is ".+", which only =~ matches: instance="$instance" would find nothing.
    for path in _dashboards():
        for where, expr in dashboard_expressions(path):
            for match in re.finditer(r'(=~|!~|=|!=)\s*"\$\{?(?!__)\w+', expr):
                assert match.group(1) in {"=~", "!~"}, f"{path.name} / {where}: {expr}"


def test_every_expression_parses_after_substitution(tmp_path, promtool):
    expressions = [substitute_grafana_variables(expr) for path in _dashboards()
                   for _, expr in dashboard_expressions(path)]
    assert len(expressions) > 50
    assert not [expr for expr in expressions if "$" in expr]
    rules = tmp_path / "expressions.rules.yml"
    rules.write_text(yaml.safe_dump(recording_rules_document(expressions), sort_keys=False), encoding="utf-8")
    done = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(expressions)} rules found" in done.stdout + done.stderr


def test_promtool_check_catches_a_broken_expression(tmp_path, promtool):
    rules = tmp_path / "broken.rules.yml"
    rules.write_text(yaml.safe_dump(recording_rules_document(["sum(rate(up[1m])"])), encoding="utf-8")
    done = subprocess.run([str(promtool), "check", "rules", str(rules)], capture_output=True, text=True, check=False)
    assert done.returncode != 0


# --- platform_ctl.promql --------------------------------------------------------------------------


@pytest.mark.parametrize(("expr", "expected"), [
    ('rate(x{instance=~"$instance"}[$__rate_interval])', 'rate(x{instance=~".+"}[1m])'),
    ('rate(x{instance=~"${instance}"}[${__interval}])', 'rate(x{instance=~".+"}[1m])'),
    ('x{instance=~"${instance:regex}",job=~"$job"}', 'x{instance=~".+",job=~".+"}'),
    ("increase(x[$__range])", "increase(x[1h])"),
    ("sum(up)", "sum(up)"),
])
def test_substitute_grafana_variables(expr, expected):
    assert substitute_grafana_variables(expr) == expected


@pytest.mark.parametrize(("query", "expected"), [
    ('label_values(up{job="node"}, instance)', 'up{job="node"}'),
    ('label_values(sum by (a, b) (x{y=~"1,2"}), a)', 'sum by (a, b) (x{y=~"1,2"})'),
    ("query_result(topk(5, up))", "topk(5, up)"),
    ("label_values(instance)", None),
    ("label_names()", None),
    ("metrics(node_.*)", None),
    ("up == 1", "up == 1"),
])
def test_variable_query_expression(query, expected):
    assert variable_query_expression(query) == expected


def test_dashboard_expressions_walks_nested_rows_and_variables(tmp_path):
    dashboard = {
        "panels": [
            {"type": "row", "title": "collapsed", "collapsed": True, "panels": [
                {"title": "inner", "targets": [{"expr": "inner_metric"}, {"refId": "B"}]},
            ]},
            {"title": "outer", "targets": [{"expr": "a"}, {"expr": "b"}]},
            {"title": "text panel"},
        ],
        "templating": {"list": [
            {"name": "instance", "type": "query",
             "query": {"query": 'label_values(up{job="node"}, instance)', "refId": "X"}},
            {"name": "old", "type": "query", "query": "query_result(count(up))"},
            {"name": "interval", "type": "interval", "query": "1m,5m"},
        ]},
    }
    path = tmp_path / "d.json"
    path.write_text(json.dumps(dashboard))
    assert dashboard_expressions(path) == [
        ("inner", "inner_metric"), ("outer", "a"), ("outer", "b"),
        ("variable instance", 'up{job="node"}'), ("variable old", "count(up)"),
    ]


def test_rule_expressions(tmp_path):
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [
        {"name": "hosts", "rules": [
            {"alert": "HostDown", "expr": 'up{job="node"} == 0\n', "for": "5m"},
            {"record": "instance:cpu:rate1m", "expr": "rate(node_cpu_seconds_total[1m])"},
        ]},
        {"name": "empty"},
    ]}))
    assert rule_expressions(path) == [
        ("hosts/HostDown", 'up{job="node"} == 0'),
        ("hosts/instance:cpu:rate1m", "rate(node_cpu_seconds_total[1m])"),
    ]


# --- Templates ------------------------------------------------------------------------------------


def test_grafana_ini_uses_postgresql_with_verified_tls_when_there_is_a_postgres_host():
    rendered = _render("grafana.ini.j2")
    assert "type = postgres\n" in rendered
    assert "host = pg1.test.platform.internal:5432\n" in rendered
    assert "ssl_mode = verify-full\n" in rendered
    assert "ca_cert_path = /usr/local/share/ca-certificates/platform-test-ca.crt\n" in rendered
    assert 'password = """db-secret-0123456789"""\n' in rendered
    assert 'admin_password = """admin-secret-0123456789"""\n' in rendered
    assert "http_addr = 10.10.0.5\n" in rendered
    for setting in ("allow_sign_up = false", "reporting_enabled = false", "check_for_updates = false"):
        assert f"\n{setting}\n" in rendered


def test_grafana_ini_falls_back_to_sqlite_without_a_postgres_host():
    rendered = _render("grafana.ini.j2", groups={"monitoring": ["mon1"]})
    assert "type = sqlite3\n" in rendered
    assert "type = postgres" not in rendered


PROMETHEUS_DATASOURCE = {
    "name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy",
    "url": "http://10.10.0.5:9090", "isDefault": True, "editable": False,
    "jsonData": {"httpMethod": "POST", "timeInterval": "15s", "prometheusType": "Prometheus"},
}


def test_datasources_include_postgresql_as_the_reader_when_there_is_a_postgres_host():
    document = yaml.safe_load(_render("datasources.yaml.j2"))
    by_uid = {source["uid"]: source for source in document["datasources"]}
    assert set(by_uid) == {"prometheus", "postgresql"}
    assert by_uid["prometheus"] == PROMETHEUS_DATASOURCE
    postgres = by_uid["postgresql"]
    assert postgres["url"] == "pg1.test.platform.internal:5432"
    # The postgresql role's monitoring login, never grafana (the owner of Grafana's database).
    assert postgres["user"] == "grafana_reader"
    assert postgres["jsonData"]["database"] == "postgres"
    assert postgres["jsonData"]["sslmode"] == "verify-full"
    assert postgres["jsonData"]["sslRootCertFile"] == "/usr/local/share/ca-certificates/platform-test-ca.crt"
    assert postgres["secureJsonData"] == {"password": "reader-secret-0123456789"}


def test_datasources_are_prometheus_only_without_a_postgres_host_or_when_turned_off():
    without_postgres = yaml.safe_load(_render("datasources.yaml.j2", groups={"monitoring": ["mon1"]}))
    assert without_postgres["datasources"] == [PROMETHEUS_DATASOURCE]
    turned_off = yaml.safe_load(_render("datasources.yaml.j2", grafana_postgres_datasource_enabled=False))
    assert turned_off["datasources"] == [PROMETHEUS_DATASOURCE]


def test_apt_files_render():
    # The source is common's apt_repository template, given what tasks/install.yml passes it.
    sources = _render("apt.sources.j2", ROLE.parent / "common" / "templates", common_apt_name="Grafana Labs",
                      common_apt_key_fingerprint=DEFAULTS["grafana_apt_key_fingerprint"],
                      common_apt_uri=DEFAULTS["grafana_apt_repository"], common_apt_suite="stable",
                      common_apt_components=["main"],
                      common_apt_keyring=VARS["_grafana_apt_keyring"])
    assert "URIs: https://apt.grafana.com\n" in sources
    assert "Suites: stable\nComponents: main\nSigned-By: /etc/apt/keyrings/grafana.asc\n" in sources
    preferences = _render("grafana.pref.j2")
    assert "Package: grafana\nPin: version 12.3.1\nPin-Priority: 1001\n" in preferences
    assert "Pin: origin apt.grafana.com\nPin-Priority: -1\n" in preferences


def test_dashboards_provider_and_unit_dropin_render():
    provider = yaml.safe_load(_render("dashboards.yaml.j2"))
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
    dropin = _render("grafana-server.conf.j2")
    assert "ProtectSystem=strict\n" in dropin
    assert "ReadWritePaths=/var/lib/grafana /var/log/grafana\n" in dropin
