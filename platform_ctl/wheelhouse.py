"""Python applications from hash-locked wheelhouses, for hosts that reach no package index.

An application (Dagster with dbt, JupyterLab with its kernels' libraries) is declared by two files
of ``platform_ctl/locks/``:

- ``<app>.in``: what the application asks for, every top-level requirement pinned (an unpinned
  resolve picks whatever integration library satisfies the others, sometimes years old);
- ``<app>.lock``: every distribution of the resolved set, ``name==version`` with the sha256 of the one
  wheel the hosts install, compiled for the hosts' interpreter (CPython 3.11 on manylinux x86_64,
  Debian 12's python3). It is generated, committed and reviewed like code.

The controller downloads the locked wheels once (``pip download --require-hashes``, wheels only: a
source distribution would run its build, which may download from anywhere) into one tar in the
artifact cache, its sha256 recorded like the other artifacts'; its version is the lock's own
sha256, so a changed lock is a new artifact beside the old one. A host installs it into a virtualenv
keyed by that version with ``pip install --no-index --require-hashes``: nothing is fetched there.

    python -m platform_ctl.wheelhouse lock [APP ...]    # resolve <app>.in again, write <app>.lock
    python -m platform_ctl.wheelhouse check [APP ...]   # each lock is whole and matches its .in
    python -m platform_ctl.artifacts APP-wheelhouse     # build (or check) one wheelhouse
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from platform_ctl.errors import PreflightError
from platform_ctl.paths import cache_dir

LOCKS = Path(__file__).resolve().parent / "locks"

#: The hosts' interpreter: Debian 12's python3.
PYTHON_VERSION = "3.11"
#: Every manylinux tag a Debian 12 host (glibc 2.36) runs, newest first. pip matches ``--platform``
#: literally: ``manylinux_2_36_x86_64`` alone matches no wheel published as ``manylinux2014``.
PLATFORMS = (
    *(f"manylinux_2_{minor}_x86_64" for minor in range(36, 4, -1)),
    "manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64",
)

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def canonical(name: str) -> str:
    """A distribution's name as the index and pip compare it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Locked:
    name: str
    version: str
    sha256: tuple[str, ...]


def read_lock(path: Path) -> dict[str, Locked]:
    """``<app>.lock``'s distributions by canonical name; a line without a pin or a hash is refused."""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    found: dict[str, Locked] = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pin = _PIN.match(line)
        hashes = tuple(_HASH.findall(line))
        if pin is None or not hashes:
            raise PreflightError(f"{path}: requirement {line.split()[0]!r} is not 'name==version "
                                 "--hash=sha256:…': regenerate it with python -m platform_ctl.wheelhouse lock")
        name = canonical(pin.group(1))
        if name in found:
            raise PreflightError(f"{path}: {name} is locked twice")
        found[name] = Locked(name, pin.group(3), hashes)
    if not found:
        raise PreflightError(f"{path} locks nothing")
    return found


def read_requirements(path: Path) -> dict[str, str]:
    """``<app>.in``'s top-level requirements, name -> pinned version; an unpinned one is refused."""
    wanted: dict[str, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        pin = _PIN.match(line)
        if pin is None:
            raise PreflightError(f"{path}: {line!r} is not pinned (name==version): an unpinned requirement resolves"
                                 " to whatever satisfies the others, sometimes a years-old release")
        wanted[canonical(pin.group(1))] = pin.group(3)
    return wanted


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _pip_environment(tmp: Path) -> dict[str, str]:
    # Only the index: no find-links directory of this machine (its wheels need not be the index's,
    # so their hashes would not be what a lock says), no user configuration.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    return {**environment, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_CACHE_DIR": str(cache_dir() / "pip"), "TMPDIR": str(tmp)}


def _target_options() -> list[str]:
    platforms = [option for tag in PLATFORMS for option in ("--platform", tag)]
    return ["--only-binary=:all:", *platforms, "--python-version", PYTHON_VERSION,
            "--implementation", "cp", "--abi", f"cp{PYTHON_VERSION.replace('.', '')}"]


def _pip(args: list[str], tmp: Path, what: str) -> None:
    done = subprocess.run([sys.executable, "-m", "pip", *args], env=_pip_environment(tmp), capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-6:])
        raise PreflightError(f"{what} failed: {tail}")


@dataclass(frozen=True)
class Wheelhouse:
    """The locked wheels of one application, as one artifact of the cache."""

    app: str
    licence: str = "various (each wheel's own)"

    @property
    def name(self) -> str:
        return f"{self.app}-wheelhouse"

    @property
    def lock(self) -> Path:
        return LOCKS / f"{self.app}.lock"

    @property
    def requirements(self) -> Path:
        return LOCKS / f"{self.app}.in"

    @property
    def version(self) -> str:
        """The lock's sha256 (16 hex digits): a changed lock is another wheelhouse and another venv."""
        if not self.lock.exists():
            raise PreflightError(f"{self.lock} is missing: python -m platform_ctl.wheelhouse lock {self.app}")
        return _sha256(self.lock.read_bytes())[:16]

    @property
    def directory(self) -> Path:
        return cache_dir() / "artifacts" / self.name / self.version

    @property
    def path(self) -> Path:
        return self.directory / f"{self.name}-{self.version}.tar"

    @property
    def checksum_file(self) -> Path:
        return self.directory / f"{self.name}.sha256"

    def build(self, tmp: Path, say: Callable[[str], None]) -> Path:
        locked = read_lock(self.lock)
        say(f"downloading the {len(locked)} locked wheels of {self.app} (once)")
        wheels = tmp / "wheels"
        _pip(["download", "--no-deps", "--require-hashes", "--dest", str(wheels), *_target_options(),
              "--requirement", str(self.lock)], tmp, f"pip download of {self.lock.name}")
        names = sorted(p.name for p in wheels.iterdir())
        got = {canonical(n.split("-", 1)[0]) for n in names}
        missing = sorted(set(locked) - got)
        if missing or len(names) != len(locked):
            raise PreflightError(f"{self.lock.name}: pip downloaded {len(names)} wheels for {len(locked)} locked"
                                 f" distributions (missing: {', '.join(missing) or 'none'})")
        out = tmp / self.path.name
        # One reproducible tar: sorted members, no owner, no time (the same lock gives the same sha256).
        with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as archive:
            for name, data in [("requirements.lock", self.lock.read_bytes()),
                               *((f"wheels/{n}", (wheels / n).read_bytes()) for n in names)]:
                member = tarfile.TarInfo(name)
                member.size, member.mode, member.mtime = len(data), 0o644, 0
                archive.addfile(member, io.BytesIO(data))
        return out


APPS: dict[str, Wheelhouse] = {app: Wheelhouse(app) for app in ("dagster", "jupyter")}


def compile_lock(app: str, say: Callable[[str], None] = lambda _m: None) -> Path:
    """Resolve ``<app>.in`` for the hosts' interpreter and platforms, write ``<app>.lock``."""
    house = APPS[app]
    wanted = read_requirements(house.requirements)
    say(f"resolving {house.requirements.name} for CPython {PYTHON_VERSION} on manylinux x86_64")
    with tempfile.TemporaryDirectory(prefix="platform-ctl-lock-") as tmp:
        report = Path(tmp) / "report.json"
        _pip(["install", "--dry-run", "--ignore-installed", "--target", str(Path(tmp) / "target"),
              "--report", str(report), *_target_options(), "--requirement", str(house.requirements)], Path(tmp),
             f"resolving {house.requirements.name}")
        resolved = json.loads(report.read_text())["install"]
    lines = [f"# {house.lock.name}: every distribution {app} installs, with the sha256 of its one wheel.",
             f"# Generated from {house.requirements.name} by `python -m platform_ctl.wheelhouse lock {app}`"
             f" for CPython {PYTHON_VERSION}",
             "# on manylinux x86_64 (Debian 12's python3); do not edit by hand.", ""]
    for item in sorted(resolved, key=lambda i: canonical(i["metadata"]["name"])):
        name, version = canonical(item["metadata"]["name"]), item["metadata"]["version"]
        digest = item["download_info"].get("archive_info", {}).get("hashes", {}).get("sha256")
        wheel = item["download_info"]["url"].rsplit("/", 1)[-1]
        if not digest or not wheel.endswith(".whl"):
            raise PreflightError(f"{name} {version} resolved to {wheel} without a sha256 wheel: cannot lock it")
        lines.append(f"{name}=={version} \\\n    --hash=sha256:{digest}\n    # {wheel}")
    house.lock.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = check(app)
    if problems:
        raise PreflightError("; ".join(problems))
    say(f"wrote {house.lock} ({len(resolved)} distributions; {', '.join(f'{k}=={v}' for k, v in wanted.items())})")
    return house.lock


def check(app: str) -> list[str]:
    """What is wrong with ``<app>.lock``: unreadable, or a top-level pin of ``<app>.in`` it does not hold."""
    house = APPS[app]
    try:
        locked, wanted = read_lock(house.lock), read_requirements(house.requirements)
    except (OSError, PreflightError) as exc:
        return [str(exc)]
    return [f"{house.lock.name} has {name} {locked[name].version if name in locked else 'missing'}, "
            f"{house.requirements.name} pins {version}: python -m platform_ctl.wheelhouse lock {app}"
            for name, version in wanted.items() if name not in locked or locked[name].version != version]


def _say(message: str) -> None:
    print(f"wheelhouse: {message}", file=sys.stderr, flush=True)


def main(args: list[str]) -> int:
    if not args or args[0] not in ("lock", "check"):
        print("usage: python -m platform_ctl.wheelhouse lock|check [APP ...]", file=sys.stderr)
        return 2
    apps = args[1:] or list(APPS)
    unknown = sorted(set(apps) - set(APPS))
    if unknown:
        print(f"unknown application(s) {', '.join(unknown)}; known: {', '.join(APPS)}", file=sys.stderr)
        return 2
    if args[0] == "lock":
        for app in apps:
            compile_lock(app, say=_say)
        return 0
    problems = [p for app in apps for p in check(app)]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
