"""The artifact cache: upstream programs built once on the controller and pushed to the hosts.

An artifact whose source is ``controller`` is made here into
``~/.cache/platform-ctl/artifacts/<name>/<version>/``, with its sha256 recorded beside it; the roles
copy it to the hosts. Three kinds:

- Go programs (MinIO, mc, node_exporter, Prometheus, promtool, Alertmanager, OpenTofu, the
  DigitalOcean provider), built from a pinned
  module version of the Go module proxy;
- release archives from Maven Central (Trino's server tarball), downloaded once into
  ``~/.cache/platform-ctl/downloads/``, checked against a pinned digest and trimmed to what the hosts
  run;
- the Java runtime, packed from a JDK installed on the controller (Temurin, of the major version
  the Java program needs or newer);
- the Python applications' wheelhouses: the wheels of a committed hash lock, downloaded from the
  package index into one tar (platform_ctl/wheelhouse.py).

Most Go programs are a plain ``go install module@version``. Two
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
from platform_ctl.wheelhouse import APPS, Wheelhouse, read_lock

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
    #: Go build tags. They change the binary, so they name its cache directory too (``VERSION+TAG``).
    tags: tuple[str, ...] = ()
    #: Files (path in the module, text) written into the source tree before a source-zip build: the
    #: stand-ins for generated files a module's zip lacks (a web UI's compiled assets).
    placeholders: tuple[tuple[str, str], ...] = ()

    @property
    def directory(self) -> Path:
        return cache_dir() / "artifacts" / self.name / "+".join((self.version, *self.tags))

    @property
    def path(self) -> Path:
        return self.directory / (self.binary or self.name)

    @property
    def tag_flags(self) -> list[str]:
        """The build tags as `go install` and `go build` take them (none: no flag)."""
        return ["-tags", ",".join(self.tags)] if self.tags else []

    @property
    def checksum_file(self) -> Path:
        return self.directory / f"{self.name}.sha256"

    def build(self, tmp: Path, say: Callable[[str], None]) -> Path:
        # The machine's Go (1.24 or newer, which MinIO's go.mod asks for) may not be on a service's PATH.
        go = shutil.which("go") or shutil.which("go", path="/usr/local/go/bin")
        if go is None:
            raise PreflightError(f"building {self.name} needs Go 1.24+ (the `go` command): not on PATH "
                                 "nor in /usr/local/go/bin")
        how = "from its source zip" if self.zip_sha256 else "with go install"
        say(f"building {self.name} {self.version} {how} (a few minutes, once)")
        built = tmp / (self.binary or self.name)
        if self.zip_sha256:
            _build_from_zip(go, self, tmp, built)
        else:
            flags = (["-ldflags", self.ldflags] if self.ldflags else []) + self.tag_flags
            _go(go, ["install", "-trimpath", *flags, f"{self.module}@{self.version}"], {"GOBIN": str(tmp)},
                f"go install {self.module}@{self.version}")
        built.chmod(0o755)
        return built


@dataclass(frozen=True)
class MavenArchive:
    """A release tarball from Maven Central, checked against its pinned sha1, trimmed to ``keep``.

    Maven Central publishes only sha1 (and md5) digests of these archives; the sha1 is pinned here,
    so a changed file is refused, and the trimmed archive gets its own sha256 like every artifact.
    """

    name: str
    group: str
    artifact: str
    version: str
    licence: str
    sha1: str
    #: Top-level directories of the archive kept whole (e.g. ``bin``, ``lib``, ``etc``).
    keep: tuple[str, ...]
    #: Subdirectories of ``plugin/`` kept; the others are removed (Trino ships ~60 connectors).
    plugins: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return (f"https://repo1.maven.org/maven2/{self.group.replace('.', '/')}/{self.artifact}/{self.version}/"
                f"{self.artifact}-{self.version}.tar.gz")

    @property
    def directory(self) -> Path:
        return cache_dir() / "artifacts" / self.name / self.version

    @property
    def path(self) -> Path:
        return self.directory / f"{self.artifact}-{self.version}.tar.gz"

    @property
    def checksum_file(self) -> Path:
        return self.directory / f"{self.name}.sha256"

    def download(self, say: Callable[[str], None]) -> Path:
        """The upstream archive in the download cache, fetched once and checked against the pinned sha1."""
        import urllib.request

        target = cache_dir() / "downloads" / f"{self.artifact}-{self.version}.tar.gz"
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            say(f"downloading {self.url} (once)")
            partial = target.with_suffix(".part")
            try:
                with urllib.request.urlopen(self.url, timeout=600) as answer, partial.open("wb") as f:  # noqa: S310
                    shutil.copyfileobj(answer, f, 1 << 20)
            except OSError as exc:
                raise PreflightError(f"downloading {self.url} failed: {exc}") from exc
            partial.replace(target)
        digest = hashlib.sha1(usedforsecurity=False)
        with target.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
        if digest.hexdigest() != self.sha1:
            raise PreflightError(f"{target} has sha1 {digest.hexdigest()}, pinned {self.sha1} for {self.url}:"
                                 f" delete it to download it again")
        return target

    def build(self, tmp: Path, say: Callable[[str], None]) -> Path:
        import tarfile

        source = self.download(say)
        say(f"trimming {source.name} to {', '.join(self.keep)} and plugins {', '.join(self.plugins)}")
        top = f"{self.artifact}-{self.version}"
        kept_plugins = {f"{top}/plugin/{p}" for p in self.plugins}
        out = tmp / self.path.name
        with tarfile.open(source, "r:gz") as archive, tarfile.open(out, "w:gz", compresslevel=1) as trimmed:
            found: set[str] = set()
            for member in archive:
                parts = member.name.split("/")
                if len(parts) < 2 or parts[1] not in (*self.keep, "plugin"):
                    continue
                if parts[1] == "plugin" and len(parts) > 2:
                    plugin = "/".join(parts[:3])
                    if plugin not in kept_plugins:
                        continue
                    found.add(parts[2])
                if member.islnk() and member.linkname.split("/")[1:2] == ["plugin"] \
                        and "/".join(member.linkname.split("/")[:3]) not in kept_plugins:
                    # A hard link into a plugin that is dropped: store the file itself.
                    target = archive.getmember(member.linkname)
                    data = archive.extractfile(target)
                    copy = tarfile.TarInfo(member.name)
                    copy.size, copy.mode, copy.mtime = target.size, target.mode, target.mtime
                    trimmed.addfile(copy, data)
                    continue
                trimmed.addfile(member, archive.extractfile(member) if member.isfile() else None)
        missing = sorted(set(self.plugins) - found)
        if missing:
            raise PreflightError(f"{source.name} has no plugin(s) {', '.join(missing)}")
        return out


@dataclass(frozen=True)
class JavaRuntime:
    """The controller's JDK of at least ``minimum`` (a major version), packed for the hosts.

    Adoptium's download site is not reachable from every machine platform-ctl runs on, so the
    ``controller`` source packs an installed Temurin JDK (its sources, man pages and demos left out);
    the hosts of a production environment may use the ``url`` source with Adoptium's checksum instead.
    """

    name: str
    minimum: int
    licence: str = "GPL-2.0-with-classpath-exception"
    search: tuple[str, ...] = ("/usr/lib/jvm",)

    def home(self) -> tuple[Path, str]:
        """The newest installed JDK whose major version is at least ``minimum``, with its full version."""
        found: list[tuple[tuple[int, ...], Path, str]] = []
        for root in self.search:
            for release in sorted(Path(root).glob("*/release")):
                fields = dict(line.split("=", 1) for line in release.read_text().splitlines() if "=" in line)
                version = fields.get("JAVA_VERSION", "").strip('"')
                numbers = tuple(int(n) for n in version.split(".") if n.isdigit())
                if numbers and numbers[0] >= self.minimum and (release.parent / "bin" / "javac").exists():
                    found.append((numbers, release.parent, version))
        if not found:
            raise PreflightError(f"no JDK {self.minimum} or newer under {', '.join(self.search)} (Trino needs it):"
                                 f" install Temurin {self.minimum}+ there")
        _, home, version = max(found)
        return home, version

    @property
    def version(self) -> str:
        return self.home()[1]

    @property
    def directory(self) -> Path:
        return cache_dir() / "artifacts" / self.name / self.version

    @property
    def path(self) -> Path:
        return self.directory / f"jdk-{self.version}.tar.gz"

    @property
    def checksum_file(self) -> Path:
        return self.directory / f"{self.name}.sha256"

    def build(self, tmp: Path, say: Callable[[str], None]) -> Path:
        import tarfile

        home, version = self.home()
        say(f"packing the JDK {version} of {home}")
        out = tmp / self.path.name
        skip = {"lib/src.zip", "man", "demo", "sample"}

        def keep(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            inner = info.name.split("/", 1)[1] if "/" in info.name else ""
            return None if any(inner == s or inner.startswith(s + "/") for s in skip) else info

        with tarfile.open(out, "w:gz", compresslevel=1) as archive:
            archive.add(home, arcname=f"jdk-{version}", filter=keep)
        return out


Artifact = GoArtifact | MavenArchive | JavaRuntime | Wheelhouse


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

# Prometheus' node_exporter, on every host: the newest release the proxy serves (v1.9.1 to v1.12.1
# here; v1.12.1's go.mod asks for Go 1.25). `go install` leaves the version variables of
# prometheus/common empty, so `node_exporter --version` and its build_info metric would say
# nothing; the ldflags set them as upstream's release builds (promu) do. No build date: the same
# source gives the same binary, hence the same sha256.
NODE_EXPORTER_VERSION = "1.12.1"


def _prometheus_program(name: str, package: str, module_version: str, version: str,
                        tags: tuple[str, ...] = ()) -> GoArtifact:
    stamp = "github.com/prometheus/common/version"
    return GoArtifact(
        name, package, module_version, "Apache-2.0",
        ldflags=f"-s -w -X {stamp}.Version={version} -X {stamp}.Branch=HEAD -X {stamp}.BuildUser=platform-ctl",
        tags=tags,
    )


def node_exporter(version: str = NODE_EXPORTER_VERSION) -> GoArtifact:
    """node_exporter at ``version`` (the spec's form, ``1.12.1``; the module version is ``v1.12.1``)."""
    return _prometheus_program("node_exporter", "github.com/prometheus/node_exporter", f"v{version}", version)


# Prometheus and its promtool, on the monitoring hosts (promtool on the controller too, for the rule
# tests). Prometheus 3's Go module is versioned v0.3XX.Y for release 3.XX.Y (v0.316.0 is 3.16.0, the
# newest the proxy serves; its go.mod has no replace directive, so `go install` works). Built
# without the `builtinassets` tag: the React UI's compiled assets are not in the module, so the
# web UI pages answer 404 while the HTTP API (what Grafana, platform-ctl status and the tests read)
# is whole. Built with the `remove_all_sd` tag (upstream's, plugins/*.go): the platform's scrape
# configurations use file_sd only, and leaving out the cloud service discoveries (Kubernetes, AWS,
# Azure, GCE and 20 others; file and HTTP discovery stay, plugins/minimum.go) makes the first build
# of a fresh machine download and compile far less.
PROMETHEUS_VERSION = "3.16.0"
_PROMETHEUS_TAGS = ("remove_all_sd",)
# Alertmanager: the newest the proxy serves (v0.35.0). Its ui/web.go embeds ui/app/dist, the UI
# compiled by Elm and Vite, which the module zip lacks (so `go install` fails: "pattern app/dist: no
# matching files"), and Elm's compiler comes from GitHub, which is not reachable here. It is built
# from its source zip with a one-file stand-in for dist: the UI pages answer 404, the API v2 (what
# Prometheus, Grafana and platform-ctl status use) is whole.
ALERTMANAGER_VERSION = "0.35.0"
ALERTMANAGER_ZIP_SHA256 = {"0.35.0": "d2df4d229eb19aa49b7dc401d889501e95fa7110c2c61710373a11093270e1ec"}


def _prometheus_module_version(version: str) -> str:
    major, minor, patch = version.split(".")
    if major != "3":
        raise PreflightError(f"versions.prometheus {version!r}: this platform-ctl builds Prometheus 3.x only")
    return f"v0.{int(minor) + 300}.{patch}"


def prometheus(version: str = PROMETHEUS_VERSION) -> GoArtifact:
    """The Prometheus server at ``version`` (``3.16.0``)."""
    return _prometheus_program("prometheus", "github.com/prometheus/prometheus/cmd/prometheus",
                               _prometheus_module_version(version), version, _PROMETHEUS_TAGS)


def promtool(version: str = PROMETHEUS_VERSION) -> GoArtifact:
    """promtool of the same release as :func:`prometheus` (checks configurations, tests rules)."""
    return _prometheus_program("promtool", "github.com/prometheus/prometheus/cmd/promtool",
                               _prometheus_module_version(version), version, _PROMETHEUS_TAGS)


def alertmanager(version: str = ALERTMANAGER_VERSION) -> GoArtifact:
    """Alertmanager at ``version`` (``0.35.0``; a version needs its source zip's sha256 pinned here)."""
    if version not in ALERTMANAGER_ZIP_SHA256:
        raise PreflightError(f"versions.alertmanager {version!r}: this platform-ctl pins the source of Alertmanager "
                             f"{', '.join(ALERTMANAGER_ZIP_SHA256)} (platform_ctl/artifacts.py); set one of them")
    stamped = _prometheus_program("alertmanager", "github.com/prometheus/alertmanager", f"v{version}", version)
    return GoArtifact(
        stamped.name, stamped.module, stamped.version, stamped.licence, zip_sha256=ALERTMANAGER_ZIP_SHA256[version],
        package="./cmd/alertmanager", ldflags=stamped.ldflags,
        placeholders=(("ui/app/dist/README", "The web UI is not part of this build; use the API v2.\n"),),
    )


# Trino: the server tarball of Maven Central (sha1 as Maven Central publishes it). 476 is the newest
# whose tarball is served here (477+ answer 404); it needs Java 24 or newer.
TRINO_VERSION = "476"
TRINO_SHA1 = "c9b38be4017ebd2f7095455aaac772fb40247ebe"
#: The connectors and plugins the platform uses; the other ~55 (0.8 GB in all) stay on the controller.
TRINO_PLUGINS = ("iceberg", "tpch", "tpcds", "password-authenticators", "jmx")

DEFAULTS: dict[str, Artifact] = {
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
    "trino": MavenArchive("trino", "io.trino", "trino-server", TRINO_VERSION, "Apache-2.0", TRINO_SHA1,
                          keep=("bin", "lib", "NOTICE", "README.txt"), plugins=TRINO_PLUGINS),
    "java": JavaRuntime("java", minimum=24),
    "node_exporter": node_exporter(),
    "prometheus": prometheus(),
    "promtool": promtool(),
    "alertmanager": alertmanager(),
    # The Python applications' locked wheels (platform_ctl/wheelhouse.py): dagster-wheelhouse, jupyter-wheelhouse.
    **{house.name: house for house in APPS.values()},
}
#: What `python -m platform_ctl.artifacts` builds when no name is given.
HOST_ARTIFACTS = ("minio", "mc", "trino", "java", "node_exporter", "prometheus", "promtool", "alertmanager",
                  "jupyter-wheelhouse", "dagster-wheelhouse")
TOOLCHAIN_ARTIFACTS = ("tofu", "terraform-provider-digitalocean")


def artifacts_for(spec: Spec) -> list[Artifact]:
    """The controller-made artifacts an environment needs, at the spec's pinned versions."""
    needed: list[Artifact] = []
    if spec.count("minio") > 0:
        minio = DEFAULTS["minio"]
        assert isinstance(minio, GoArtifact)
        if "minio" in spec.versions:
            minio = GoArtifact(minio.name, minio.module, spec.versions["minio"], minio.licence)
        needed += [minio, DEFAULTS["mc"]]
    if spec.count("trino_coordinator") > 0:
        wanted = spec.versions.get("trino", TRINO_VERSION)
        if wanted != TRINO_VERSION:
            raise PreflightError(f"versions.trino {wanted!r}: this platform-ctl pins Trino {TRINO_VERSION} (its"
                                 " Maven Central digest is in platform_ctl/artifacts.py); set versions.trino to"
                                 f" {TRINO_VERSION!r} or leave it out")
        needed += [DEFAULTS["trino"], DEFAULTS["java"]]
    # Every host runs node_exporter, and every environment has hosts.
    needed.append(node_exporter(spec.versions.get("node_exporter", NODE_EXPORTER_VERSION)))
    if spec.count("apps") > 0:
        needed += [_locked_app("jupyter", "jupyterlab", spec), _locked_app("dagster", "dagster", spec)]
    if spec.count("monitoring") > 0:
        wanted = spec.versions.get("prometheus", PROMETHEUS_VERSION)
        needed += [prometheus(wanted), promtool(wanted),
                   alertmanager(spec.versions.get("alertmanager", ALERTMANAGER_VERSION))]
    return needed


def _locked_app(app: str, distribution: str, spec: Spec) -> Wheelhouse:
    """``app``'s wheelhouse; the spec's ``versions.<distribution>``, if set, must be the lock's."""
    house = APPS[app]
    locked = read_lock(house.lock)[distribution].version
    wanted = spec.versions.get(distribution, locked)
    if wanted != locked:
        raise PreflightError(f"versions.{distribution} {wanted!r}: this platform-ctl locks {distribution} {locked}"
                             f" (platform_ctl/locks/{app}.lock); set versions.{distribution} to {locked!r} or leave"
                             f" it out (a new version is a new lock: python -m platform_ctl.wheelhouse lock {app})")
    return house


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


def ensure(artifact: Artifact, say: Callable[[str], None] = lambda _m: None) -> Built:
    """Make ``artifact`` unless the cache has it; check the cached file against its recorded sha256."""
    if artifact.path.exists() and artifact.checksum_file.exists():
        recorded = artifact.checksum_file.read_text().split()[0]
        if _sha256(artifact.path) != recorded:
            raise PreflightError(
                f"{artifact.path} does not match its recorded sha256 {recorded}: delete "
                f"{artifact.directory} and deploy again to rebuild it"
            )
        return Built(artifact.name, artifact.version, artifact.path, recorded)
    artifact.directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=artifact.directory, prefix=".build-") as tmp:
        built = artifact.build(Path(tmp), say)
        checksum = _sha256(built)
        built.replace(artifact.path)
    artifact.checksum_file.write_text(f"{checksum}  {artifact.path.name}\n")
    say(f"made {artifact.path} (sha256 {checksum[:16]}…)")
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
        z.extractall(tmp / "src")  # noqa: S202 - the proxy's zip, checked against its pinned sha256 above
    root = tmp / "src" / f"{artifact.module}@{artifact.version}"
    # A zip's vendor/ holds only modules.txt; the dependencies come from the proxy like any build.
    shutil.rmtree(root / "vendor", ignore_errors=True)
    for relative, text in artifact.placeholders:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    _go(go, ["build", "-trimpath", "-ldflags", artifact.ldflags, *artifact.tag_flags, "-o", str(output),
             artifact.package], {},
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
