"""Where things live: the project (specs, generated state), the collection, caches, user config."""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from platform_ctl.errors import PlatformCtlError, UsageError

#: The collection's own files (ansible/, roles/, molecule/) sit beside the package.
COLLECTION_ROOT = Path(__file__).resolve().parent.parent

_ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")


def check_env_name(env: str) -> str:
    """Return ``env`` if it is a valid environment name, else raise.

    Environment names become container, network and droplet name parts, so they are short
    lower-case DNS labels.
    """
    if not _ENV_NAME.match(env):
        raise UsageError(
            f"environment name {env!r} is not allowed: use 1-20 characters of a-z, 0-9 and '-', "
            "starting with a letter"
        )
    return env


@dataclass(frozen=True)
class Project:
    """A checkout holding ``inventories/<env>/`` and the generated ``.platform/<env>/`` state."""

    root: Path

    @classmethod
    def discover(cls, explicit: Path | None = None) -> Project:
        """The project at ``explicit``, or the first directory upward from cwd with ``inventories/``."""
        if explicit is not None:
            return cls(explicit.resolve())
        here = Path.cwd().resolve()
        for candidate in (here, *here.parents):
            if (candidate / "inventories").is_dir():
                return cls(candidate)
        return cls(COLLECTION_ROOT)

    def env_dir(self, env: str) -> Path:
        return self.root / "inventories" / check_env_name(env)

    def spec_path(self, env: str) -> Path:
        return self.env_dir(env) / "platform.yml"

    def vault_path(self, env: str) -> Path:
        return self.env_dir(env) / "group_vars" / "all" / "vault.yml"

    def state_dir(self, env: str) -> Path:
        return self.root / ".platform" / check_env_name(env)


def _user_dir(override: str, xdg: str, fallback: str) -> Path:
    explicit = os.environ.get(override)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get(xdg) or str(Path.home() / fallback)) / "platform-ctl"


def cache_dir() -> Path:
    """Downloads and builds shared by every project of this user (``~/.cache/platform-ctl``)."""
    return _user_dir("PLATFORM_CACHE_DIR", "XDG_CACHE_HOME", ".cache")


def control_dir(state_dir: Path) -> Path:
    """A short private directory for an environment's SSH master sockets.

    A Unix socket path is limited to 108 bytes, and ssh adds a 17-character suffix while it
    creates one: a socket under a deep project directory (``/tmp/pytest-of-root/.../.platform/e2e``)
    does not fit. The directory is per user (mode 0700, like ssh-agent's) and per environment
    (named by a digest of its state directory).
    """
    base = Path(os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/platform-ctl-{os.getuid()}")  # noqa: S108 - private, checked below
    base.mkdir(mode=0o700, exist_ok=True)
    info = base.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise PlatformCtlError(f"{base} must belong to you with mode 0700 (it holds SSH master sockets); remove it")
    path = base / hashlib.sha256(str(state_dir.resolve()).encode()).hexdigest()[:12]
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def config_dir() -> Path:
    """The user's configuration directory: vault passwords live here, outside any repository."""
    return _user_dir("PLATFORM_CONFIG_DIR", "XDG_CONFIG_HOME", ".config")


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and a rename: never half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
