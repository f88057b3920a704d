"""Loop devices of the local backend's volumes are released even when the state directory is gone."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from platform_ctl.infra.local import LocalBackend


def _attach(path: Path) -> str:
    with open(path, "wb") as f:
        f.truncate(16 * 1024**2)
    return subprocess.run(["losetup", "--find", "--show", str(path)], capture_output=True, text=True,
                          check=True).stdout.strip()


def _attached(loop: str) -> bool:
    return subprocess.run(["losetup", loop], capture_output=True, check=False).returncode == 0


@pytest.fixture
def loops() -> Iterator[list[str]]:
    made: list[str] = []
    yield made
    for loop in made:
        subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)


def test_loop_of_a_lost_state_directory_is_detached(tmp_path: Path, loops: list[str]):
    lost = tmp_path / "old-checkout" / ".platform" / "e2e" / "volumes"
    lost.mkdir(parents=True)
    loop = _attach(lost / "e2e-minio1-data.img")
    loops.append(loop)
    (lost / "e2e-minio1-data.img").unlink()  # the checkout was deleted, the loop holds the file

    LocalBackend(tmp_path / "new" / ".platform" / "e2e")._detach_orphan_loops({loop: "e2e-minio1-data"})

    assert not _attached(loop)


def test_loop_backed_by_another_file_is_left_alone(tmp_path: Path, loops: list[str]):
    loop = _attach(tmp_path / "someone-elses.img")
    loops.append(loop)

    LocalBackend(tmp_path / ".platform" / "e2e")._detach_orphan_loops({loop: "e2e-minio1-data"})

    assert _attached(loop)
