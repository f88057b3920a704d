"""Which Molecule scenario tests which role: the roles its converge.yml applies.

A scenario may test more than one role when they only make sense together (molecule/monitoring:
node_exporter and prometheus); the guards (tests/unit/test_catalogue.py,
tests/molecule/test_scenarios.py) ask that every role be converged by some scenario that has tests.
"""

from __future__ import annotations

from pathlib import Path

import yaml

MOLECULE = Path(__file__).resolve().parents[1] / "molecule"


def scenarios() -> list[str]:
    return sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))


def roles_converged() -> dict[str, str]:
    """Role name -> the scenario whose converge.yml applies it (in a play's ``roles``), for the
    scenarios with a ``tests/`` directory."""
    found: dict[str, str] = {}
    for scenario in scenarios():
        if not any((MOLECULE / scenario / "tests").glob("test_*.py")):
            continue
        for play in yaml.safe_load((MOLECULE / scenario / "converge.yml").read_text()) or []:
            for entry in play.get("roles", []):
                found.setdefault(entry["role"] if isinstance(entry, dict) else entry, scenario)
    return found
