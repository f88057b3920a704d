"""The Prometheus alert rules: promtool accepts them, their unit tests pass, and every alert is tested.

promtool is the pinned one (``platform_ctl.artifacts.promtool()``), built into the artifact cache on
first use; the rule files are those the prometheus role installs, the tests those of
``tests/promtool/`` (``promtool test rules`` format).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULES_DIR = REPO / "roles/prometheus/files/rules"
TESTS_DIR = REPO / "tests/promtool"
QUERIES_FILE = REPO / "roles/postgresql/files/exporter-queries.yaml"

RULE_FILES = sorted(RULES_DIR.glob("*.yml"))
TEST_FILES = sorted(TESTS_DIR.glob("*.test.yml"))
SEVERITIES = {"critical", "warning"}


def _run(command: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=300)


def _alerts() -> dict[str, dict[str, Any]]:
    """Every alerting rule of the rule files, by name."""
    alerts: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in alerts, f"alert {rule['alert']} defined twice"
                    alerts[rule["alert"]] = rule
    return alerts


def _alert_rule_tests() -> list[tuple[Path, dict[str, Any]]]:
    """Every ``alert_rule_test`` entry of the promtool test files, with its file."""
    found = []
    for path in TEST_FILES:
        for test in yaml.safe_load(path.read_text())["tests"]:
            found += [(path, case) for case in test.get("alert_rule_test", [])]
    return found


def test_there_are_rules_and_tests() -> None:
    assert RULE_FILES, f"no rule files in {RULES_DIR}"
    assert TEST_FILES, f"no promtool test files in {TESTS_DIR}"


@pytest.mark.parametrize("rule_file", RULE_FILES, ids=lambda p: p.name)
def test_promtool_accepts_the_rule_file(promtool: Path, rule_file: Path) -> None:
    done = _run([promtool, "check", "rules", "--lint=all", "--lint-fatal", rule_file])
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(promtool: Path, test_file: Path) -> None:
    # From the file's directory: rule_files are relative to it.
    done = _run([promtool, "test", "rules", test_file.name], cwd=test_file.parent)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_test_files_name_existing_rule_files(test_file: Path) -> None:
    for name in yaml.safe_load(test_file.read_text())["rule_files"]:
        path = (test_file.parent / name).resolve()
        assert path.parent == RULES_DIR.resolve(), f"{test_file.name}: {name} is not in {RULES_DIR}"
        assert path.exists(), f"{test_file.name}: {name} does not exist"


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    cases = _alert_rule_tests()
    firing = {case["alertname"] for _, case in cases if case.get("exp_alerts")}
    quiet = {case["alertname"] for _, case in cases if not case.get("exp_alerts")}
    alerts = set(_alerts())
    assert not alerts - firing, f"alerts with no test where they fire: {sorted(alerts - firing)}"
    assert not alerts - quiet, f"alerts with no test where they stay quiet: {sorted(alerts - quiet)}"
    unknown = {case["alertname"] for _, case in cases} - alerts
    assert not unknown, f"tests of alerts no rule file defines: {sorted(unknown)}"


@pytest.mark.parametrize("name", sorted(_alerts()))
def test_alert_has_labels_and_annotations(name: str) -> None:
    rule = _alerts()[name]
    labels, annotations = rule.get("labels", {}), rule.get("annotations", {})
    assert labels.get("severity") in SEVERITIES, f"{name}: severity must be one of {sorted(SEVERITIES)}"
    assert labels.get("component"), f"{name}: no component label"
    assert annotations.get("summary"), f"{name}: no summary annotation"
    assert annotations.get("description"), f"{name}: no description annotation"


def test_custom_exporter_metrics_the_rules_use_are_defined() -> None:
    """The pg_wal_archive_* metrics come from the exporter's custom queries: namespace_column."""
    queries = yaml.safe_load(QUERIES_FILE.read_text())
    defined = {f"{namespace}_{column}" for namespace, query in queries.items()
               for metric in query["metrics"] for column in metric}
    used = {word for rule in _alerts().values()
            for word in rule["expr"].replace("{", " ").replace("(", " ").split() if word.startswith("pg_wal_archive_")}
    assert used, "no rule reads the custom WAL archive metrics"
    assert used <= defined, f"metrics used but not defined in {QUERIES_FILE.name}: {sorted(used - defined)}"
