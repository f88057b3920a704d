"""The infrastructure-as-code toolchain: an OpenTofu (or Terraform) binary and a provider mirror.

``init`` never asks a public registry: the DigitalOcean provider is built into the artifact cache
and laid out as a filesystem mirror, named by a CLI configuration file that allows nothing else::

    ~/.cache/platform-ctl/tofu/providers/registry.opentofu.org/digitalocean/digitalocean/1.22.2/linux_amd64/
    ~/.cache/platform-ctl/tofu/tofurc

The binary is the first found of: ``$PLATFORM_TOFU``; ``tofu`` on PATH; OpenTofu already built into
the artifact cache (``scripts/setup.sh`` builds it); ``terraform`` on PATH. With none, OpenTofu is
built from its source (about two minutes, once).
"""

from __future__ import annotations

import os
import platform
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from platform_ctl.artifacts import DEFAULTS, ensure
from platform_ctl.errors import PreflightError
from platform_ctl.paths import cache_dir

PROVIDER = "digitalocean/digitalocean"
#: Registry host names the mirror answers for: OpenTofu's and Terraform's.
REGISTRY_HOSTS = ("registry.opentofu.org", "registry.terraform.io")


@dataclass(frozen=True)
class Toolchain:
    binary: Path
    #: "tofu" or "terraform"
    flavour: str
    cli_config: Path

    def environment(self) -> dict[str, str]:
        """Variables every run of the binary gets (on top of the caller's environment)."""
        return {
            "TF_CLI_CONFIG_FILE": str(self.cli_config),
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "CHECKPOINT_DISABLE": "1",
        }


def _platform() -> str:
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return f"linux_{machine}"


def _binary(say: Callable[[str], None]) -> tuple[Path, str]:
    explicit = os.environ.get("PLATFORM_TOFU")
    if explicit:
        path = Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise PreflightError(f"PLATFORM_TOFU={explicit} is not an executable file")
        return path, "terraform" if path.name.startswith("terraform") else "tofu"
    found = shutil.which("tofu")
    if found:
        return Path(found), "tofu"
    tofu = DEFAULTS["tofu"]
    terraform = shutil.which("terraform")
    if terraform and not tofu.path.exists():
        return Path(terraform), "terraform"
    return ensure(tofu, say).path, "tofu"


def mirror_dir() -> Path:
    return cache_dir() / "tofu" / "providers"


def ensure_toolchain(say: Callable[[str], None] = lambda _m: None) -> Toolchain:
    """The binary and a provider mirror holding the pinned DigitalOcean provider; built once."""
    binary, flavour = _binary(say)
    provider = ensure(DEFAULTS["terraform-provider-digitalocean"], say)
    version = provider.version.removeprefix("v")
    for host in REGISTRY_HOSTS:
        target = mirror_dir() / host / PROVIDER / version / _platform() / provider.path.name
        if not target.exists() or target.stat().st_size != provider.path.stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(provider.path, target)
    config = cache_dir() / "tofu" / "tofurc"
    hosts = ", ".join(f'"{host}/{PROVIDER}"' for host in REGISTRY_HOSTS)
    text = (
        "# Written by platform-ctl: providers come from the local mirror only, never a registry.\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror_dir()}"\n'
        f"    include = [{hosts}]\n"
        "  }\n"
        "}\n"
    )
    if not config.exists() or config.read_text() != text:
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(text)
    return Toolchain(binary, flavour, config)


def main() -> int:
    """``python -m platform_ctl.infra.toolchain``: build (or find) the toolchain, print what is used."""
    import sys

    def say(message: str) -> None:
        print(f"toolchain: {message}", file=sys.stderr, flush=True)

    # Set-up builds OpenTofu even where Terraform is installed: OpenTofu is the default.
    if not os.environ.get("PLATFORM_TOFU") and not shutil.which("tofu"):
        ensure(DEFAULTS["tofu"], say)
    toolchain = ensure_toolchain(say)
    print(f"{toolchain.flavour} {toolchain.binary}; provider mirror {mirror_dir()}; config {toolchain.cli_config}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
