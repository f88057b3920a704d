"""The artifact cache: upstream programs built once on the controller and pushed to the hosts.

An artifact whose source is ``controller`` is built here from a pinned module version of the Go
module proxy into ``~/.cache/platform-ctl/artifacts/<name>/<version>/``, with its sha256 recorded
beside it; the roles copy it to the hosts. Most are a plain ``go install module@version``. Two
cannot be: OpenTofu's go.mod has a ``replace`` directive (which ``go install`` refuses) and the
proxy serves the DigitalOcean provider's source zip but not its go.mod. Those are built from the
module's source zip, fetched from the proxy and checked against a pinned sha256, as the main module.
Go's module and build caches live under ``~/.cache/platform-ctl/go`` too, so a rebuild after a
version change is incremental.

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
    #: Build from the module's source zip (checked against this sha256) instead of ``go install``.
    zip_sha256: str | None = None
    #: The main package inside the module, for a source-zip build.
    package: str = "."
    #: The file the program is installed as (default: the artifact's name).
    binary: str | None = None
    ldflags: str = ""

    @property
    def directory(self) -> Path:
        return cache_dir() / "artifacts" / self.name / self.version

    @property
    def path(self) -> Path:
        return self.directory / (self.binary or self.name)

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

# OpenTofu, newest release the proxy serves; -X version.dev=no is what its release builds set.
TOFU_VERSION = "v1.12.6"
# The DigitalOcean provider: the proxy refuses every v2 tag (they lack a /v2 module path) and the
# pseudo-versions of their commits; v1.22.2 (2020-08) is the newest version whose source it serves.
DO_PROVIDER_VERSION = "v1.22.2"

DEFAULTS: dict[str, GoArtifact] = {
    "minio": GoArtifact("minio", "github.com/minio/minio", MINIO_VERSION, "AGPL-3.0"),
    "mc": GoArtifact("mc", "github.com/minio/mc", MC_VERSION, "AGPL-3.0"),
    "tofu": GoArtifact(
        "tofu", "github.com/opentofu/opentofu", TOFU_VERSION, "MPL-2.0",
        zip_sha256="03f18e3e80836a68b6bd44989f2df0d4e07b0409d6724d3a59ca5f8331bc66fb",
        package="./cmd/tofu", ldflags="-s -w -X github.com/opentofu/opentofu/version.dev=no",
    ),
    "terraform-provider-digitalocean": GoArtifact(
        "terraform-provider-digitalocean", "github.com/digitalocean/terraform-provider-digitalocean",
        DO_PROVIDER_VERSION, "MPL-2.0",
        zip_sha256="7b950355159351f0e3edaa3b7f34350494db3c6917d8c21087b5e1aae49343d0",
        binary=f"terraform-provider-digitalocean_{DO_PROVIDER_VERSION}", ldflags="-s -w",
    ),
}
#: What `python -m platform_ctl.artifacts` builds when no name is given.
HOST_ARTIFACTS = ("minio", "mc")
TOOLCHAIN_ARTIFACTS = ("tofu", "terraform-provider-digitalocean")


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
    how = "from its source zip" if artifact.zip_sha256 else "with go install"
    say(f"building {artifact.name} {artifact.version} {how} (a few minutes, once)")
    with tempfile.TemporaryDirectory(dir=artifact.directory, prefix=".build-") as tmp:
        built = Path(tmp) / (artifact.binary or artifact.name)
        if artifact.zip_sha256:
            _build_from_zip(go, artifact, Path(tmp), built)
        else:
            _go(go, ["install", "-trimpath", f"{artifact.module}@{artifact.version}"], {"GOBIN": tmp},
                f"go install {artifact.module}@{artifact.version}")
        checksum = _sha256(built)
        built.chmod(0o755)
        built.replace(artifact.path)
    artifact.checksum_file.write_text(f"{checksum}  {artifact.name}\n")
    say(f"built {artifact.path} (sha256 {checksum[:16]}…)")
    return Built(artifact.name, artifact.version, artifact.path, checksum)


def _go(go: str, args: list[str], env: dict[str, str], what: str, cwd: Path | None = None) -> None:
    done = subprocess.run([go, *args], env={**_go_environment(), **env}, cwd=cwd, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-4:])
        raise PreflightError(f"{what} failed: {tail}")


def _proxy() -> str:
    """The first real proxy of GOPROXY (the zip comes from where `go` would fetch modules)."""
    for entry in os.environ.get("GOPROXY", "https://proxy.golang.org").replace("|", ",").split(","):
        if entry.startswith(("https://", "http://", "file://")):
            return entry.rstrip("/")
    return "https://proxy.golang.org"


def _build_from_zip(go: str, artifact: GoArtifact, tmp: Path, output: Path) -> None:
    """Fetch ``module@version``'s source zip from the proxy, check its sha256, build it as the main module."""
    import urllib.request
    import zipfile

    # Module paths are case-encoded in proxy URLs (upper case becomes !lower); ours are lower case.
    url = f"{_proxy()}/{artifact.module}/@v/{artifact.version}.zip"
    archive = tmp / "source.zip"
    try:
        with urllib.request.urlopen(url, timeout=300) as answer, archive.open("wb") as f:  # noqa: S310 - proxy URL
            shutil.copyfileobj(answer, f)
    except OSError as exc:
        raise PreflightError(f"fetching {url} failed: {exc}") from exc
    found = _sha256(archive)
    if found != artifact.zip_sha256:
        raise PreflightError(f"{url} has sha256 {found}, pinned {artifact.zip_sha256}: refusing to build it")
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp / "src")
    root = tmp / "src" / f"{artifact.module}@{artifact.version}"
    # A zip's vendor/ holds only modules.txt; the dependencies come from the proxy like any build.
    shutil.rmtree(root / "vendor", ignore_errors=True)
    _go(go, ["build", "-trimpath", "-ldflags", artifact.ldflags, "-o", str(output), artifact.package], {},
        f"go build of {artifact.module}@{artifact.version}", cwd=root)


def _say(message: str) -> None:
    print(f"artifacts: {message}", file=sys.stderr, flush=True)


def main(args: list[str]) -> int:
    as_json = "--json" in args
    names = [a for a in args if a != "--json"]
    unknown = sorted(set(names) - set(DEFAULTS))
    if unknown:
        print(f"unknown artifact(s) {', '.join(unknown)}; known: {', '.join(DEFAULTS)}", file=sys.stderr)
        return 2
    chosen = [DEFAULTS[n] for n in names or HOST_ARTIFACTS]
    built = [ensure(artifact, say=_say) for artifact in chosen]
    if as_json:
        print(json.dumps({b.name: b.as_inventory() for b in built}))
    else:
        for b in built:
            print(f"{b.name} {b.version} {b.sha256} {b.path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
