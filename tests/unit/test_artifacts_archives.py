"""Maven archives trimmed to the plugins used, and the Java runtime packed from an installed JDK."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from platform_ctl import artifacts
from platform_ctl.artifacts import JavaRuntime, MavenArchive, ensure
from platform_ctl.errors import PreflightError


def _tar(path: Path, files: dict[str, bytes], links: dict[str, str]) -> None:
    with tarfile.open(path, "w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for name, target in links.items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.LNKTYPE, target
            archive.addfile(info)


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(artifacts, "cache_dir", lambda: tmp_path)
    return tmp_path


def _server(cache: Path) -> tuple[MavenArchive, bytes]:
    top = "srv-1"
    files = {f"{top}/bin/launcher": b"#!/bin/sh\n", f"{top}/lib/core.jar": b"core",
             f"{top}/plugin/big/shared.jar": b"shared by big and kept", f"{top}/plugin/big/only-big.jar": b"x" * 1000,
             f"{top}/plugin/kept/own.jar": b"own"}
    # The upstream tarball stores a jar shared by two plugins once and hard-links the second copy.
    links = {f"{top}/plugin/kept/shared.jar": f"{top}/plugin/big/shared.jar"}
    download = cache / "downloads" / "srv-1.tar.gz"
    download.parent.mkdir(parents=True)
    _tar(download, files, links)
    sha1 = hashlib.sha1(download.read_bytes(), usedforsecurity=False).hexdigest()
    return MavenArchive("srv", "org.example", "srv", "1", "Apache-2.0", sha1, keep=("bin", "lib"),
                        plugins=("kept",)), download.read_bytes()


def test_archive_keeps_named_plugins_and_resolves_links_into_dropped_ones(cache: Path):
    archive, _ = _server(cache)
    built = ensure(archive)
    with tarfile.open(built.path) as trimmed:
        names = sorted(m.name for m in trimmed if m.isfile())
        shared = trimmed.extractfile("srv-1/plugin/kept/shared.jar")
        assert shared is not None
        assert shared.read() == b"shared by big and kept"
    assert names == ["srv-1/bin/launcher", "srv-1/lib/core.jar", "srv-1/plugin/kept/own.jar",
                     "srv-1/plugin/kept/shared.jar"]
    assert built.sha256 == hashlib.sha256(built.path.read_bytes()).hexdigest()


def test_archive_with_another_sha1_is_refused(cache: Path):
    archive, _ = _server(cache)
    wrong = MavenArchive(archive.name, archive.group, archive.artifact, archive.version, archive.licence,
                         "0" * 40, archive.keep, archive.plugins)
    with pytest.raises(PreflightError, match="pinned 0000"):
        ensure(wrong)


def test_archive_missing_a_plugin_is_refused(cache: Path):
    archive, _ = _server(cache)
    wanting = MavenArchive(archive.name, archive.group, archive.artifact, archive.version, archive.licence,
                           archive.sha1, archive.keep, ("kept", "absent"))
    with pytest.raises(PreflightError, match="no plugin"):
        ensure(wanting)


def _jdk(root: Path, name: str, version: str) -> None:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "javac").write_text("")
    (home / "bin" / "java").write_text("java")
    (home / "lib").mkdir()
    (home / "lib" / "src.zip").write_text("sources")
    (home / "release").write_text(f'IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="{version}"\n')


def test_java_runtime_is_the_newest_jdk_new_enough_without_sources(cache: Path, tmp_path: Path):
    jvm = tmp_path / "jvm"
    _jdk(jvm, "old", "17.0.15")
    _jdk(jvm, "new", "25.0.3")
    _jdk(jvm, "mid", "24.0.2")
    runtime = JavaRuntime("java", minimum=24, search=(str(jvm),))
    built = ensure(runtime)
    assert built.version == "25.0.3"
    with tarfile.open(built.path) as packed:
        names = sorted(m.name for m in packed if m.isfile())
    assert "jdk-25.0.3/bin/java" in names
    assert "jdk-25.0.3/lib/src.zip" not in names


def test_no_jdk_new_enough_is_one_clear_error(tmp_path: Path):
    _jdk(tmp_path, "old", "21.0.1")
    with pytest.raises(PreflightError, match="no JDK 24 or newer"):
        JavaRuntime("java", minimum=24, search=(str(tmp_path),)).home()
