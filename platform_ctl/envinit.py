"""``platform-ctl init``: scaffold ``inventories/<env>/`` with a spec, group_vars and a vault."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

from platform_ctl.errors import PlatformCtlError, SpecError, UsageError
from platform_ctl.paths import Project, check_env_name, write_text_atomic
from platform_ctl.spec import DO_REGIONS, PROVIDERS, Spec, load_spec, parse_yaml
from platform_ctl.vault import SECRET_KEYS, VaultStatus, ensure_vault

TEMPLATES = Path(__file__).resolve().parent / "templates"

#: Region of a new DigitalOcean environment when none is given.
DEFAULT_REGION = "fra1"
#: The local environment's VPC (its Docker bridge network).
LOCAL_VPC_CIDR = "10.42.0.0/24"


@dataclass(frozen=True)
class InitResult:
    """What :func:`init_environment` did.

    Attributes:
        env: the environment.
        spec_path: ``inventories/<env>/platform.yml``.
        created: files written by this call (spec, group_vars, vault), in that order; with
            ``force`` that includes files it replaced.
        kept: files that existed and were kept (an existing vault may have gained keys: see
            ``vault.added``).
        vault: what happened to the vault (key names only).
    """

    env: str
    spec_path: Path
    created: tuple[Path, ...]
    kept: tuple[Path, ...]
    vault: VaultStatus


def default_vpc_cidr(env: str, provider: str) -> str:
    """A /24 for a new environment: fixed for local, else derived from the name.

    DigitalOcean refuses overlapping VPC ranges within an account, so each environment gets its own
    ``10.N.0.0/24`` with N from 64 to 191 (clear of 10.42 used locally and of DigitalOcean's
    reserved 10.229, 10.244-10.246). Two names can still collide; the spec comment says so.
    """
    if provider == "local":
        return LOCAL_VPC_CIDR
    return f"10.{64 + zlib.crc32(env.encode()) % 128}.0.0/24"


def _render(template: str, **values: object) -> str:
    import jinja2  # only init renders templates

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,  # noqa: S701 - renders YAML, not HTML
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return environment.get_template(template).render(**values)


def render_spec(env: str, provider: str, region: str | None = None) -> str:
    """The text of a new ``platform.yml`` for ``env`` (validated before it is returned).

    Raises:
        SpecError: the provider or region is not allowed.
    """
    check_env_name(env)
    where = f"inventories/{env}/platform.yml"
    if provider not in PROVIDERS:
        raise SpecError(where, "provider", f"{provider!r} is not a provider; allowed: {', '.join(PROVIDERS)}")
    if provider == "local":
        if region not in (None, "local"):
            raise SpecError(where, "region", f"{region!r} is not a region of provider local; allowed: local")
        region = "local"
    elif region is None:
        region = DEFAULT_REGION
    elif region not in DO_REGIONS:
        raise SpecError(where, "region", f"{region!r} is not a DigitalOcean region; allowed: {', '.join(DO_REGIONS)}")
    text = _render(
        "platform.yml.j2",
        env=env,
        provider=provider,
        region=region,
        vpc_cidr=default_vpc_cidr(env, provider),
    )
    # The template must always produce a spec the loader accepts.
    from pydantic import ValidationError

    try:
        Spec.model_validate(parse_yaml(text, where), context={"env": env})
    except ValidationError as exc:  # pragma: no cover - a template bug
        raise PlatformCtlError(f"the spec template produced an invalid spec for {env!r}: {exc}") from exc
    return text


def render_group_vars(env: str, provider: str = "digitalocean") -> str:
    """The text of a new ``group_vars/all/main.yml``; a local environment declares what its
    containers cannot do."""
    return _render("group_vars_all.yml.j2", env=env, provider=provider, secret_keys=SECRET_KEYS)


def init_environment(
    project: Project,
    env: str,
    provider: str | None = None,
    region: str | None = None,
    force: bool = False,
) -> InitResult:
    """Create ``inventories/<env>/``: ``platform.yml``, ``group_vars/all/main.yml`` and the vault.

    Args:
        project: the project to create the environment in.
        env: the environment name.
        provider: ``local`` or ``digitalocean``; None: ``local`` for the environment named local,
            else ``digitalocean``.
        region: DigitalOcean region (default fra1); must be None or ``local`` for provider local.
        force: overwrite an existing ``platform.yml`` (and group_vars ``main.yml``). The vault is
            never regenerated: missing keys are added, existing secrets kept.

    Raises:
        UsageError: the spec exists and ``force`` is false, or the name is not allowed.
        SpecError: the provider or region is not allowed.
        PreflightError: an existing vault cannot be opened with the environment's vault password.
    """
    check_env_name(env)
    if provider is None:
        provider = "local" if env == "local" else "digitalocean"
    spec_path = project.spec_path(env)
    if spec_path.exists() and not force:
        raise UsageError(
            f"{spec_path} already exists: edit it, or run `platform-ctl init {env} --force` to replace it"
        )
    spec_text = render_spec(env, provider, region)
    group_vars = project.env_dir(env) / "group_vars" / "all" / "main.yml"
    created: list[Path] = []
    kept: list[Path] = []

    # The vault first: if an existing one cannot be opened, nothing else has been written yet.
    vault = ensure_vault(project, env)
    spec_path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(spec_path, spec_text)
    created.append(spec_path)
    if group_vars.exists() and not force:
        kept.append(group_vars)
    else:
        group_vars.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(group_vars, render_group_vars(env, provider))
        created.append(group_vars)
    (created if vault.created else kept).append(vault.path)
    load_spec(spec_path, env=env)  # what was written is what deploy will read
    return InitResult(env=env, spec_path=spec_path, created=tuple(created), kept=tuple(kept), vault=vault)
