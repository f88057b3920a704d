"""A wheelhouse built from a hash lock: reproducible, installable with no network, refused when altered.

Uses a one-distribution lock cut from the shipped jupyter lock (the index's real wheel and hash), so
the test downloads one small wheel; the applications' own wheelhouses are built the same way.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from platform_ctl import wheelhouse
from platform_ctl.artifacts import ensure


def _six_lock() -> str:
    text = (wheelhouse.LOCKS / "jupyter.lock").read_text()
    found = re.search(r"^six==\S+ \\\n\s+--hash=sha256:[0-9a-f]{64}\n\s+# \S+\n", text, re.MULTILINE)
    assert found, "the jupyter lock no longer has six: pick another pure-Python distribution of it"
    return found.group(0)


def _offline(*command: str) -> subprocess.CompletedProcess[str]:
    """Run ``command`` in a new network namespace: no interface but a down loopback, nothing reachable."""
    return subprocess.run(["unshare", "--net", *command], capture_output=True, text=True, check=False,
                          env={"PATH": "/usr/bin:/bin", "PIP_CONFIG_FILE": "/dev/null"})


@pytest.fixture
def small_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> wheelhouse.Wheelhouse:
    locks = tmp_path / "locks"
    locks.mkdir()
    (locks / "jupyter.lock").write_text(_six_lock())
    monkeypatch.setattr(wheelhouse, "LOCKS", locks)
    return wheelhouse.APPS["jupyter"]


def test_a_wheelhouse_is_reproducible_and_installs_with_no_network(
        small_app: wheelhouse.Wheelhouse, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    built = []
    for cache in ("one", "two"):
        monkeypatch.setenv("PLATFORM_CACHE_DIR", str(tmp_path / cache))
        built.append(ensure(small_app))
    assert built[0].sha256 == built[1].sha256
    assert built[0].version == small_app.version

    with tarfile.open(built[0].path) as archive:
        assert sorted(m.name for m in archive) == ["requirements.lock", f"wheels/{_six_lock().split('# ')[1].strip()}"]
        archive.extractall(tmp_path / "house", filter="data")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    pip = [str(tmp_path / "venv/bin/pip"), "install", "--no-index", "--require-hashes",
           "--find-links", str(tmp_path / "house/wheels"), "--requirement", str(tmp_path / "house/requirements.lock")]
    installed = _offline(*pip)
    assert installed.returncode == 0, installed.stderr
    assert _offline(str(tmp_path / "venv/bin/python"), "-c", "import six; print(six.__version__)").stdout.strip() \
        == re.match(r"six==(\S+)", _six_lock()).group(1)  # type: ignore[union-attr]

    # A wheel altered after the lock was made is refused, offline as online.
    wheel = next((tmp_path / "house/wheels").iterdir())
    wheel.write_bytes(wheel.read_bytes() + b"\0")
    subprocess.run([str(tmp_path / "venv/bin/pip"), "uninstall", "-y", "-q", "six"], check=True)
    altered = _offline(*pip)
    assert altered.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES" in altered.stderr
