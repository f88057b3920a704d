"""The artifact cache: upstream programs built once on the controller and pushed to the hosts.

An artifact whose source is ``controller`` is built here with ``go install`` of a pinned module
version from the Go module proxy into ``~/.cache/platform-ctl/artifacts/<name>/<version>/``, with
its sha256 recorded beside it; the roles copy it to the hosts. Go's module and build caches live
under ``~/.cache/platform-ctl/go`` too, so a rebuild after a version change is incremental.

    python -m platform_ctl.artifacts [--json] [NAME ...]   # build (or check) the named artifacts, or all

With ``--json`` it prints ``{name: {version, path, sha256}}``, the inventory's ``platform_artifacts``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from platform_ctl.errors import PreflightError
from platform_ctl.paths import cache_dir

if TYPE_CHECKING:
    from platform_ctl.spec import Spec


@dataclass(frozen=True)
class GoArtifact:
    """A program built from a Go module at a pinned version."""

    name: str
    module: str
    version: str
    licence: str

    @property
    def directory(self) -> Path:
        return cache_dir() / "artifacts" / self.name / self.version

    @property
    def path(self) -> Path:
        return self.directory / self.name

    @property
    def checksum_file(self) -> Path:
        return self.directory / f"{self.name}.sha256"


@dataclass(frozen=True)
class Built:
    name: str
    version: str
    path: Path
    sha256: str

    def as_inventory(self) -> dict[str, str]:
        return {"version": self.version, "path": str(self.path), "sha256": self.sha256}


# MinIO's community edition is published as source only since October 2025. The Go module proxy
# refuses the release tags (RELEASE.2025-10-15T17-29-55Z and its pseudo-version answer 403); this
# is the last commit of the community repository: that release plus five bug fixes (conditional
# put read quorum, duplicate responses, PostPolicy tag enforcement) and README changes.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
# The MinIO client, for reconciling buckets, users and policies on the hosts (newest served).
MC_VERSION = "v0.0.0-20250313080218-cf909e1063a9"

DEFAULTS: dict[str, GoArtifact] = {
    "minio": GoArtifact("minio", "github.com/minio/minio", MINIO_VERSION, "AGPL-3.0"),
    "mc": GoArtifact("mc", "github.com/minio/mc", MC_VERSION, "AGPL-3.0"),
}


def artifacts_for(spec: Spec) -> list[GoArtifact]:
    """The controller-built artifacts an environment needs, at the spec's pinned versions."""
    if spec.count("minio") == 0:
        return []
    minio = DEFAULTS["minio"]
    if "minio" in spec.versions:
        minio = GoArtifact(minio.name, minio.module, spec.versions["minio"], minio.licence)
    return [minio, DEFAULTS["mc"]]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _go_environment() -> dict[str, str]:
    go_cache = cache_dir() / "go"
    return {
        **os.environ,
        "GOMODCACHE": str(go_cache / "mod"),
        "GOCACHE": str(go_cache / "build"),
        # The machine's Go; never download another toolchain.
        "GOTOOLCHAIN": "local",
        # Static binaries: the hosts need no C library of a particular version.
        "CGO_ENABLED": "0",
        "GOFLAGS": "-mod=mod",
    }


def ensure(artifact: GoArtifact, say: Callable[[str], None] = lambda _m: None) -> Built:
    """Build ``artifact`` unless the cache has it; check the cached file against its recorded sha256."""
    if artifact.path.exists() and artifact.checksum_file.exists():
        recorded = artifact.checksum_file.read_text().split()[0]
        if _sha256(artifact.path) != recorded:
            raise PreflightError(
                f"{artifact.path} does not match its recorded sha256 {recorded}: delete "
                f"{artifact.directory} and deploy again to rebuild it"
            )
        return Built(artifact.name, artifact.version, artifact.path, recorded)
    # The machine's Go (1.24 or newer, which MinIO's go.mod asks for) may not be on a service's PATH.
    go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
    if go is None:
        raise PreflightError(f"building {artifact.name} needs Go 1.24+ (the `go` command): not on PATH "
                             "nor in /usr/local/go/bin")
    artifact.directory.mkdir(parents=True, exist_ok=True)
    say(f"building {artifact.name} {artifact.version} with go install (a few minutes, once)")
    with tempfile.TemporaryDirectory(dir=artifact.directory, prefix=".build-") as tmp:
        done = subprocess.run(
            [go, "install", "-trimpath", f"{artifact.module}@{artifact.version}"],
            env={**_go_environment(), "GOBIN": tmp}, capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-4:])
            raise PreflightError(f"go install {artifact.module}@{artifact.version} failed: {tail}")
        built = Path(tmp) / artifact.name
        checksum = _sha256(built)
        built.chmod(0o755)
        built.replace(artifact.path)
    artifact.checksum_file.write_text(f"{checksum}  {artifact.name}\n")
    say(f"built {artifact.path} (sha256 {checksum[:16]}…)")
    return Built(artifact.name, artifact.version, artifact.path, checksum)


def _say(message: str) -> None:
    print(f"artifacts: {message}", file=sys.stderr, flush=True)


def main(args: list[str]) -> int:
    as_json = "--json" in args
    names = [a for a in args if a != "--json"]
    unknown = sorted(set(names) - set(DEFAULTS))
    if unknown:
        print(f"unknown artifact(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}", file=sys.stderr)
        return 2
    chosen = [DEFAULTS[n] for n in names] if names else list(DEFAULTS.values())
    built = [ensure(artifact, say=_say) for artifact in chosen]
    if as_json:
        print(json.dumps({b.name: b.as_inventory() for b in built}))
    else:
        for b in built:
            print(f"{b.name} {b.version} {b.sha256} {b.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
