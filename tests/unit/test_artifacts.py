"""The artifact cache: which artifacts a spec needs, and a cached file is checked before use."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from platform_ctl.artifacts import (
    ALERTMANAGER_VERSION,
    DEFAULTS,
    HOST_ARTIFACTS,
    MINIO_VERSION,
    NODE_EXPORTER_VERSION,
    TRINO_VERSION,
    GoArtifact,
    artifacts_for,
    ensure,
    prometheus,
)
from platform_ctl.artifacts import (
    promtool as promtool_artifact,
)
from platform_ctl.errors import PreflightError
from platform_ctl.paths import COLLECTION_ROOT
from platform_ctl.spec import load_spec
from platform_ctl.wheelhouse import APPS


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLATFORM_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_local_spec_needs_every_host_program_at_its_pin() -> None:
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    assert [(a.name, a.version) for a in artifacts_for(spec) if a.name != "java"] == [
        ("minio", MINIO_VERSION), ("mc", DEFAULTS["mc"].version), ("trino", TRINO_VERSION),
        ("node_exporter", f"v{NODE_EXPORTER_VERSION}"), ("jupyter-wheelhouse", APPS["jupyter"].version),
        ("dagster-wheelhouse", APPS["dagster"].version),
        # Prometheus 3.16.0 is module version v0.316.0.
        ("prometheus", "v0.316.0"), ("promtool", "v0.316.0"), ("alertmanager", f"v{ALERTMANAGER_VERSION}"),
    ]
    assert [a.name for a in artifacts_for(spec)][3] == "java"


def test_prometheus_is_built_without_cloud_service_discovery_and_its_cache_says_so(cache: Path) -> None:
    # The scrape configurations use file_sd only (roles/prometheus/templates/prometheus.yml.j2).
    for artifact in (prometheus(), promtool_artifact()):
        assert artifact.tags == ("remove_all_sd",)
        assert artifact.directory == cache / "artifacts" / artifact.name / "v0.316.0+remove_all_sd"
    assert DEFAULTS["mc"].directory == cache / "artifacts" / "mc" / DEFAULTS["mc"].version


def test_a_prometheus_version_outside_3_is_refused() -> None:
    with pytest.raises(PreflightError, match=r"Prometheus 3\.x only"):
        prometheus("2.55.1")


def test_every_host_artifact_is_built_by_default() -> None:
    # `python -m platform_ctl.artifacts` (scripts/setup.sh) makes what a deploy of any spec may need.
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    assert {a.name for a in artifacts_for(spec)} <= set(HOST_ARTIFACTS)


def test_node_exporter_follows_the_spec_version_and_reports_it() -> None:
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    other = spec.model_copy(update={"versions": {**spec.versions, "node_exporter": "1.9.1"}})
    (artifact,) = [a for a in artifacts_for(other) if a.name == "node_exporter"]
    assert isinstance(artifact, GoArtifact)
    assert (artifact.module, artifact.version) == ("github.com/prometheus/node_exporter", "v1.9.1")
    # `node_exporter --version` and node_exporter_build_info read prometheus/common's variables.
    assert "-X github.com/prometheus/common/version.Version=1.9.1" in artifact.ldflags
    assert artifact.directory.parts[-2:] == ("node_exporter", "v1.9.1")


def test_another_trino_version_is_refused_before_anything_is_built() -> None:
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    other = spec.model_copy(update={"versions": {**spec.versions, "trino": "470"}})
    with pytest.raises(PreflightError, match="pins Trino 476"):
        artifacts_for(other)


def _cached(artifact: GoArtifact, body: bytes, recorded: str) -> None:
    artifact.directory.mkdir(parents=True)
    artifact.path.write_bytes(body)
    artifact.checksum_file.write_text(f"{recorded}  {artifact.name}\n")


def test_a_cached_artifact_is_used_when_its_checksum_matches(cache: Path) -> None:
    artifact = DEFAULTS["mc"]
    _cached(artifact, b"program", hashlib.sha256(b"program").hexdigest())
    built = ensure(artifact)
    assert built.path == cache / "artifacts" / "mc" / artifact.version / "mc"
    assert built.sha256 == hashlib.sha256(b"program").hexdigest()


def test_a_cached_artifact_that_changed_is_refused(cache: Path) -> None:
    artifact = DEFAULTS["minio"]
    _cached(artifact, b"tampered", hashlib.sha256(b"original").hexdigest())
    with pytest.raises(PreflightError, match="does not match its recorded sha256"):
        ensure(artifact)


def test_jupyterlab_is_the_version_of_its_lock() -> None:
    spec = load_spec(COLLECTION_ROOT / "inventories/local/platform.yml", env="local")
    same = spec.model_copy(update={"versions": {**spec.versions, "jupyterlab": "4.6.6"}})
    assert APPS["jupyter"] in artifacts_for(same)
    other = spec.model_copy(update={"versions": {**spec.versions, "jupyterlab": "4.4.5"}})
    with pytest.raises(PreflightError, match=r"versions.jupyterlab '4.4.5': this platform-ctl locks jupyterlab 4.6.6 "
                                             r"\(platform_ctl/locks/jupyter.lock\)"):
        artifacts_for(other)
