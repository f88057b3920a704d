"""Every role's defaults and its meta/argument_specs.yml (main entry point) declare the same variables.

A default without a spec escapes validation and the README table; a spec option without a default
is a variable the role reads but nobody sets. The one exception is an option marked
``required: true``: it is an input the caller must give (a secret, the inventory contract), so it
must NOT have a default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"


class _AnsibleYamlLoader(yaml.SafeLoader):
    """Safe loader that also accepts Ansible's ``!unsafe`` and ``!vault`` tags (as plain values)."""


def _tagged(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)  # type: ignore[arg-type]


for _tag in ("!unsafe", "!vault", "!vault-encrypted"):
    _AnsibleYamlLoader.add_constructor(_tag, _tagged)


def _load(path: Path) -> Any:
    with path.open(encoding="utf-8") as stream:
        return yaml.load(stream, Loader=_AnsibleYamlLoader)


def _roles() -> list[Path]:
    if not ROLES_DIR.is_dir():
        return []
    return sorted(path for path in ROLES_DIR.iterdir() if path.is_dir() and not path.name.startswith("."))


def _defaults(role: Path) -> dict[str, Any]:
    """Variables of defaults/main.yml (or .yaml), or of every file in a defaults/main/ directory."""
    defaults_dir = role / "defaults"
    files = [defaults_dir / "main.yml", defaults_dir / "main.yaml"]
    if (defaults_dir / "main").is_dir():
        files += sorted((defaults_dir / "main").glob("*.y*ml"))
    merged: dict[str, Any] = {}
    for path in files:
        if path.is_file():
            data = _load(path) or {}
            assert isinstance(data, dict), f"{path} must be a mapping of variables"
            merged.update(data)
    return merged


def _main_options(role: Path) -> dict[str, Any]:
    for name in ("argument_specs.yml", "argument_specs.yaml"):
        path = role / "meta" / name
        if path.is_file():
            specs = (_load(path) or {}).get("argument_specs") or {}
            assert "main" in specs, f"{path} has no 'main' entry point"
            return specs["main"].get("options") or {}
    pytest.fail(f"role {role.name} has no meta/argument_specs.yml (every role declares its inputs)")


@pytest.mark.parametrize("role", _roles(), ids=lambda path: path.name)
def test_defaults_and_argument_specs_declare_the_same_variables(role: Path) -> None:
    defaults = set(_defaults(role))
    options = _main_options(role)
    required = {name for name, spec in options.items() if (spec or {}).get("required")}
    optional = set(options) - required

    problems = []
    if missing := sorted(defaults - set(options)):
        problems.append(f"in defaults but not in meta/argument_specs.yml: {missing}")
    if missing := sorted(optional - defaults):
        problems.append(f"in meta/argument_specs.yml but not in defaults (add a default, or mark required): {missing}")
    if clash := sorted(required & defaults):
        problems.append(f"required in meta/argument_specs.yml but given a default: {clash}")
    assert not problems, f"role {role.name}: " + "; ".join(problems)
