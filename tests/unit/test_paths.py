"""Paths that must stay usable whatever the project directory: SSH master sockets."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from platform_ctl.errors import PlatformCtlError
from platform_ctl.paths import control_dir


def test_control_dir_holds_a_socket_even_for_a_deep_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    deep = tmp_path.joinpath(*["a-rather-long-directory-name"] * 6, ".platform", "e2e")
    path = control_dir(deep)
    # What ssh creates: the ControlPath (%C is 40 hex digits) plus a 17-character temporary suffix.
    longest = path / f"verify-{'f' * 40}.{'x' * 16}"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(longest))
    longest.unlink()
    assert path.stat().st_mode & 0o777 == 0o700
    assert control_dir(deep) == path
    assert control_dir(deep.parent / "other") != path


def test_control_dir_refuses_a_directory_others_can_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    shared = tmp_path / "run"
    shared.mkdir()
    os.chmod(shared, 0o777)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    with pytest.raises(PlatformCtlError, match="mode 0700"):
        control_dir(tmp_path / ".platform" / "e2e")
