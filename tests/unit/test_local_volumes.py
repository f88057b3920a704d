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


def _backing_file(loop: str) -> str:
    """The file behind a loop device, "" when it is free. Other tests (Molecule scenarios, the e2e
    deploy) attach loop devices meanwhile, so a device freed here may already back their file."""
    return subprocess.run(["losetup", "--noheadings", "-O", "BACK-FILE", loop], capture_output=True, text=True,
                          check=False).stdout.strip().removesuffix(" (deleted)")


@pytest.fixture
def loops() -> Iterator[list[tuple[str, Path]]]:
    made: list[tuple[str, Path]] = []
    yield made
    for loop, path in made:
        if _backing_file(loop) == str(path):
            subprocess.run(["losetup", "-d", loop], capture_output=True, check=False)


def test_loop_of_a_lost_state_directory_is_detached(tmp_path: Path, loops: list[str]):
    lost = tmp_path / "old-checkout" / ".platform" / "e2e" / "volumes"
    lost.mkdir(parents=True)
    image = lost / "e2e-minio1-data.img"
    loop = _attach(image)
    loops.append((loop, image))
    image.unlink()  # the checkout was deleted, the loop holds the file

    LocalBackend(tmp_path / "new" / ".platform" / "e2e")._detach_orphan_loops({loop: "e2e-minio1-data"})

    assert _backing_file(loop) != str(image)


def test_loop_backed_by_another_file_is_left_alone(tmp_path: Path, loops: list[str]):
    image = tmp_path / "someone-elses.img"
    loop = _attach(image)
    loops.append((loop, image))

    LocalBackend(tmp_path / ".platform" / "e2e")._detach_orphan_loops({loop: "e2e-minio1-data"})

    assert _backing_file(loop) == str(image)
