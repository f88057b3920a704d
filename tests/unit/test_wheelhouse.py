"""The Python applications' hash locks: whole, pinned, matching their requests, for the hosts' platform."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from platform_ctl import wheelhouse
from platform_ctl.artifacts import DEFAULTS
from platform_ctl.errors import PreflightError
from platform_ctl.wheelhouse import APPS, PLATFORMS, check, read_lock, read_requirements

_HOST_TAGS = {"none-any", *(f"{abi}-{p}" for abi in ("cp311", "abi3", "none") for p in PLATFORMS)}


@pytest.mark.parametrize("app", sorted(APPS))
def test_each_lock_is_whole_and_holds_every_pin_of_its_request(app: str) -> None:
    assert check(app) == []
    locked = read_lock(APPS[app].lock)
    assert all(len(entry.sha256) == 1 for entry in locked.values())
    assert set(read_requirements(APPS[app].requirements)) <= set(locked)


@pytest.mark.parametrize("app", sorted(APPS))
def test_every_locked_wheel_runs_on_the_hosts_python(app: str) -> None:
    # The wheel a lock names (its comment) is for CPython 3.11 on manylinux x86_64 or pure Python.
    wheels = re.findall(r"# (\S+\.whl)", APPS[app].lock.read_text())
    assert len(wheels) == len(read_lock(APPS[app].lock))
    for wheel in wheels:
        python, abi, platforms = wheel.removesuffix(".whl").split("-")[-3:]
        assert any(p in ("py3", "py2.py3", "cp311") or re.fullmatch(r"cp3(?:[0-9]|10|11)", p)
                   for p in python.split(".")), wheel
        assert any(f"{a}-{p}" in _HOST_TAGS for a in abi.split(".") for p in platforms.split(".")), wheel


def test_a_lock_line_without_a_pin_or_a_hash_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "app.lock"
    lock.write_text("six==1.17.0 \\\n    --hash=sha256:" + "a" * 64 + "\nrequests>=2\n")
    with pytest.raises(PreflightError, match=r"app.lock: requirement 'requests>=2' is not 'name==version"):
        read_lock(lock)
    lock.write_text("six==1.17.0\n")
    with pytest.raises(PreflightError, match=r"requirement 'six==1.17.0' is not"):
        read_lock(lock)


def test_an_unpinned_request_is_refused(tmp_path: Path) -> None:
    request = tmp_path / "app.in"
    request.write_text("# comment\ndagster==1.13.27\ndagster-dbt\n")
    with pytest.raises(PreflightError, match=r"'dagster-dbt' is not pinned"):
        read_requirements(request)


def test_a_lock_that_lost_a_pin_of_its_request_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wheelhouse, "LOCKS", tmp_path)
    (tmp_path / "dagster.in").write_text("dagster==1.13.27\ndbt-core==1.11.16\n")
    (tmp_path / "dagster.lock").write_text(f"dagster==1.13.27 --hash=sha256:{'b' * 64}\n"
                                           f"dbt_core==1.11.15 --hash=sha256:{'c' * 64}\n")
    assert check("dagster") == ["dagster.lock has dbt-core 1.11.15, dagster.in pins 1.11.16: "
                                "python -m platform_ctl.wheelhouse lock dagster"]


def test_the_wheelhouse_version_is_the_locks_hash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A changed lock is another artifact (and, on the hosts, another virtualenv beside the old one).
    monkeypatch.setattr(wheelhouse, "LOCKS", tmp_path)
    monkeypatch.setenv("PLATFORM_CACHE_DIR", str(tmp_path / "cache"))
    (tmp_path / "jupyter.lock").write_text(f"six==1.17.0 --hash=sha256:{'d' * 64}\n")
    first = APPS["jupyter"].version
    (tmp_path / "jupyter.lock").write_text(f"six==1.16.0 --hash=sha256:{'e' * 64}\n")
    assert APPS["jupyter"].version != first
    assert APPS["jupyter"].path.parent.name == APPS["jupyter"].version
    (tmp_path / "jupyter.lock").unlink()
    with pytest.raises(PreflightError, match=r"jupyter.lock is missing: python -m platform_ctl.wheelhouse lock"):
        _ = APPS["jupyter"].version


def test_the_wheelhouses_are_artifacts_of_the_cache() -> None:
    assert {name for name in DEFAULTS if name.endswith("-wheelhouse")} == {"dagster-wheelhouse", "jupyter-wheelhouse"}
