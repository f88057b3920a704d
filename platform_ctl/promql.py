"""PromQL expressions of Grafana dashboards and Prometheus rule files, ready to evaluate.

The Grafana dashboards (``roles/grafana/files/dashboards/*.json``) and the Prometheus rule files hold
the platform's PromQL. These helpers list every expression with where it comes from, and turn
Grafana's template variables into values Prometheus accepts, so that tests can check each expression
parses (promtool) and returns series (a live Prometheus).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

# Grafana's built-in interval variables and the value each gets for evaluation: one minute is four
# scrape intervals of 15 s, what $__rate_interval is at least.
_INTERVALS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__rate_interval_ms": "60000",
    "__interval_ms": "60000",
    "__range_ms": "3600000",
    "__range_s": "3600",
}
# Any other variable (a dashboard's own: $instance, ${instance}, ${instance:regex}) is a host or label
# choice, used with =~ (the dashboards use `instance=~"$instance"`): ".+" stands for "All".
_ANY_VALUE = ".+"
_VARIABLE = re.compile(r"\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?::[^}]*)?\}|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")
# Grafana's query-variable functions: the PromQL inside them is the first argument.
_VARIABLE_FUNCTION = re.compile(
    r"^\s*(?P<name>label_values|query_result|label_names|metrics)\s*\((?P<args>.*)\)\s*$", re.S)


def substitute_grafana_variables(expr: str) -> str:
    """Replace Grafana's variables in ``expr`` with values Prometheus accepts.

    ``$__rate_interval``, ``$__interval`` (and ``${__rate_interval}``) become ``1m``, ``$__range``
    ``1h``; every other variable (``$instance``, ``${instance}``, ``${instance:regex}``) becomes ``.+``,
    which matches any value where the dashboard uses it with ``=~``.

    Args:
        expr: a PromQL expression as written in a dashboard.

    Returns:
        The expression with no Grafana variable left.
    """

    def _value(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        return _INTERVALS.get(name, _ANY_VALUE)

    return _VARIABLE.sub(_value, expr)


def _split_arguments(args: str) -> list[str]:
    """Top-level comma-separated arguments (commas inside (), {}, [] or quotes do not split)."""
    parts: list[str] = []
    depth = 0
    quote = ""
    current: list[str] = []
    for char in args:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'`":
            quote = char
        elif char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return [part for part in parts if part]


def variable_query_expression(query: str) -> str | None:
    """The PromQL inside a Grafana Prometheus query variable, or None when it has none.

    ``label_values(up{job="node"}, instance)`` gives ``up{job="node"}``; ``query_result(expr)`` gives
    ``expr``; ``label_values(instance)``, ``label_names()`` and ``metrics(regex)`` hold no PromQL. A
    query that is none of these functions is PromQL itself.
    """
    match = _VARIABLE_FUNCTION.match(query)
    if match is None:
        return query.strip() or None
    name, args = match.group("name"), _split_arguments(match.group("args"))
    if name == "query_result" and args:
        return args[0]
    if name == "label_values" and len(args) >= 2:
        return args[0]
    return None


def _walk_panels(panels: list[Any]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        if not isinstance(panel, dict):
            continue
        yield panel
        # A collapsed row holds its panels; an expanded one has them after it at top level.
        yield from _walk_panels(panel.get("panels") or [])


def dashboard_expressions(path: Path | str) -> list[tuple[str, str]]:
    """Every PromQL expression of a Grafana dashboard, as (where, expression) pairs.

    Walks every panel (nested rows included) and each of its targets, then the templating query
    variables. ``where`` is the panel's title, or ``variable <name>`` for a variable. Expressions keep
    their Grafana variables: pass them through :func:`substitute_grafana_variables` to evaluate them.

    Args:
        path: the dashboard's JSON file.

    Returns:
        The expressions in the dashboard's order; targets without ``expr`` (other data sources) are
        left out.
    """
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    found: list[tuple[str, str]] = []
    for panel in _walk_panels(dashboard.get("panels") or []):
        title = str(panel.get("title") or f"panel {panel.get('id', '?')}")
        for target in panel.get("targets") or []:
            expr = target.get("expr") if isinstance(target, dict) else None
            if isinstance(expr, str) and expr.strip():
                found.append((title, expr))
    for variable in (dashboard.get("templating") or {}).get("list") or []:
        if not isinstance(variable, dict) or variable.get("type") != "query":
            continue
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if not isinstance(query, str):
            query = variable.get("definition")
        if isinstance(query, str) and (expr := variable_query_expression(query)):
            found.append((f"variable {variable.get('name', '?')}", expr))
    return found


def rule_expressions(path: Path | str) -> list[tuple[str, str]]:
    """Every expression of a Prometheus rule file, as (rule name, expression) pairs.

    Args:
        path: a rule file (``groups[].rules[]``, each with ``alert`` or ``record`` and ``expr``).

    Returns:
        The expressions in file order; the name is the alert's or the recorded series', prefixed with
        its group.
    """
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    found: list[tuple[str, str]] = []
    for group in document.get("groups") or []:
        for rule in group.get("rules") or []:
            expr = rule.get("expr")
            if expr is None:
                continue
            name = rule.get("alert") or rule.get("record") or "?"
            found.append((f"{group.get('name', '?')}/{name}", str(expr).strip()))
    return found


def recording_rules_document(expressions: list[str]) -> dict[str, Any]:
    """A rule file with each expression as a recording rule, for ``promtool check rules``.

    promtool has no plain expression parser; ``check rules`` parses every ``expr`` of a rule file, so
    a generated file with one recording rule per expression checks them all at once.
    """
    return {"groups": [{"name": "expressions", "rules": [
        {"record": f"check:expression_{index}", "expr": expr} for index, expr in enumerate(expressions)
    ]}]}
