"""Loading a spec file: read, parse, validate, and turn pydantic's errors into one SpecError line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import ValidationError

from platform_ctl.errors import SpecError
from platform_ctl.spec.messages import _ALLOWED, _ALLOWED_GROUP_KEYS, _did_you_mean, _key_path, _show
from platform_ctl.spec.models import Spec
from platform_ctl.spec.rules import GROUP_RULES
from platform_ctl.spec.sections import DockerSpec, GroupSpec, MinioSpec, StateSpec
from platform_ctl.spec.yamltext import parse_yaml


def _allowed_at(loc: tuple[str | int, ...]) -> str:
    if len(loc) == 2 and loc[0] == "groups":
        return "a mapping with keys " + ", ".join(GroupSpec.model_fields)
    if len(loc) >= 3 and loc[0] == "groups":
        rule = GROUP_RULES.get(str(loc[1]))
        if loc[2] == "count" and rule is not None:
            return rule.count_allowed()
        return _ALLOWED_GROUP_KEYS.get(str(loc[2]), _ALLOWED["groups"])
    if loc and loc[0] == "admin_cidrs":
        return _ALLOWED["admin_cidrs"]
    return _ALLOWED.get(".".join(str(part) for part in loc), "see the comments in the spec template")


def _keys_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the mapping at ``loc`` may have."""
    if not loc:
        return list(Spec.model_fields)
    if loc == ("minio",):
        return list(MinioSpec.model_fields)
    if loc == ("docker",):
        return list(DockerSpec.model_fields)
    if loc == ("state",):
        return list(StateSpec.model_fields)
    if len(loc) == 2 and loc[0] == "groups":
        return list(GroupSpec.model_fields)
    return []


_NOUNS: dict[str, str] = {"provider": "a provider", "image": "a supported image"}

_EXPECTED: dict[str, str] = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "path_type": "a file path",
}


def _detail(error: Any) -> tuple[str, str]:
    """(key path, detail) for one pydantic error."""
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if kind == "platform_spec":
        return ctx.get("key") or _key_path(loc), f"{ctx['what']}; allowed: {ctx['allowed']}"
    key = _key_path(loc)
    if kind in {"extra_forbidden", "invalid_key"}:
        key = _key_path([*loc[:-1], str(loc[-1])])
        allowed = _keys_at(loc[:-1])
        return key, f"unknown key{_did_you_mean(str(loc[-1]), allowed)}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return key, f"required key is missing; allowed: {_allowed_at(loc)}"
    if kind == "literal_error":
        noun = _NOUNS.get(key, "allowed here")
        return key, f"{_show(error['input'])} is not {noun}; allowed: {_allowed_at(loc)}"
    if kind in _EXPECTED:
        return key, f"expected {_EXPECTED[kind]}, got {_show(error['input'])}; allowed: {_allowed_at(loc)}"
    message = str(error["msg"]).replace("\n", " ")
    return key, f"{message}; allowed: {_allowed_at(loc)}"


def _from_validation_error(path: object, exc: ValidationError) -> SpecError:
    """The first error, preferring an unknown key: a typo also makes the intended key "missing"."""
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e["type"] in {"extra_forbidden", "invalid_key"}]
    key, detail = _detail((unknown or errors)[0])
    return SpecError(path, key, detail)


def _env_of(path: Path) -> str | None:
    """``<env>`` when ``path`` is ``.../inventories/<env>/platform.yml``."""
    if path.name == "platform.yml" and path.parent.parent.name == "inventories":
        return path.parent.name
    return None


def load_spec(path: Path, env: str | None = None) -> Spec:
    """Read and validate an environment spec; only reads ``path`` (and checks the SSH key exists).

    Args:
        path: the spec file, usually ``inventories/<env>/platform.yml``.
        env: the environment the spec must be named after; by default the directory name when
            ``path`` is ``inventories/<env>/platform.yml``, otherwise not checked.

    Raises:
        SpecError: one line naming the file, the key path and what is allowed.
    """
    path = Path(path)
    expected = env if env is not None else _env_of(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f"platform-ctl init {expected}" if expected else "platform-ctl init <env>"
        detail = f"file not found; allowed: an environment spec (`{hint}` creates it)"
        raise SpecError(path, "", detail) from None
    except IsADirectoryError:
        raise SpecError(path, "", "is a directory; allowed: the spec file platform.yml") from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, "", f"not UTF-8 text ({exc.reason}); allowed: a UTF-8 YAML file") from None
    except OSError as exc:
        raise SpecError(path, "", f"cannot be read ({exc.strerror}); allowed: a readable file") from None
    return parse_spec(text, path, expected)


def parse_spec(text: str, path: Path, expected: str | None) -> Spec:
    """Validate the spec ``text`` as the content of ``path`` (named in errors), like :func:`load_spec`.

    ``expected`` is the environment the spec must be named after (None: not checked).
    """
    data = parse_yaml(text, path)
    if data is None:
        detail = "the file is empty; allowed: a mapping of spec keys (see `platform-ctl init`)"
        raise SpecError(path, "", detail)
    if not isinstance(data, dict):
        raise SpecError(
            path,
            "",
            f"the top level is {_show(data)}, not a mapping; allowed: a mapping of spec keys: "
            + ", ".join(Spec.model_fields),
        )
    try:
        spec = Spec.model_validate(data, context={"env": expected, "base_dir": path.parent})
    except ValidationError as exc:
        raise _from_validation_error(path, exc) from None
    key_file = spec.ssh_public_key_file
    if key_file is not None and not key_file.is_file():
        raise SpecError(
            path,
            "ssh_public_key_file",
            f"{key_file} does not exist; allowed: {_ALLOWED['ssh_public_key_file']}",
        )
    return spec
