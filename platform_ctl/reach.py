"""How users reach a deployed environment: ``platform-ctl endpoints`` and ``platform-ctl credentials``.

The services, their ports, schemes and credentials come from the component catalogue
(:attr:`platform_ctl.catalogue.Component.endpoints`); the hosts from the infrastructure, as every
other command learns them (``Backend.hosts``); the secrets from the environment's vault.

Which address a URL names: the host's **private** (VPC) address. Every service listens on it
(Grafana, JupyterLab, Prometheus and Alertmanager on it alone), and the host certificates name it
(roles/common/tasks/certificate.yml: FQDN, short name, private address, localhost), so a client
verifying against the environment's CA accepts it. The public address, the one ``status`` and
``ssh`` use, is no good there: the certificates do not name it, and the firewalls (terraform/
modules/network, roles/base ``platform.nft.j2``) admit the admin networks (``admin_cidrs``) to SSH
only; from outside the VPC only ``base_firewall_public_ports`` are open (by default Trino's 8443 on
the coordinator, to any address). So a user outside the VPC reaches a service through an SSH tunnel
(:attr:`Reach.tunnel`), and the certificate still verifies at ``localhost``. On the local backend
(and the emulator's materialised droplets) the private address is the public one and the
controller is on that network: the URLs work as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from platform_ctl.catalogue import ENDPOINTS, Endpoint
from platform_ctl.engine import require_deployed
from platform_ctl.errors import PlatformCtlError, UsageError
from platform_ctl.pki import CERT_FILE, KEY_FILE, CertificateAuthority

if TYPE_CHECKING:
    from platform_ctl.environment import Environment
    from platform_ctl.infra import Host

#: What the credential column says for a service without authentication.
NO_CREDENTIAL = "none (VPC only)"


@dataclass(frozen=True)
class Reach:
    """One service of the environment as a user reaches it.

    Attributes:
        service: the catalogue's name (``platform-ctl credentials ENV SERVICE`` takes it).
        url: at the host's private address (see the module's docstring).
        user: the login name ('' when the credential alone identifies: a token).
        credential: the command printing the secret, or :data:`NO_CREDENTIAL`.
        public: whether the port is open to users outside the VPC (``base_firewall_public_ports``).
        tunnel: the command forwarding the port to this machine's ``localhost`` through SSH.
        tunnel_url: the URL while ``tunnel`` runs.
    """

    service: str
    description: str
    host: str
    url: str
    user: str
    credential: str
    public: bool
    tunnel: str
    tunnel_url: str


@dataclass(frozen=True)
class Endpoints:
    """``platform-ctl endpoints``: the environment's services and the CA bundle their clients trust."""

    env: str
    services: tuple[Reach, ...]
    ca: Path
    #: Whether the hosts' public addresses differ from their private ones (a DigitalOcean droplet):
    #: then a user outside the VPC needs the tunnels.
    behind_vpc: bool

    def document(self) -> dict[str, Any]:
        """``endpoints --json``."""
        return {"env": self.env, "ca": str(self.ca), "services": [vars(r) for r in self.services]}


def endpoints(env: Environment) -> Endpoints:
    """Every user-facing service of the deployed ``env`` whose group has hosts, in catalogue order.

    Raises:
        UsageError: no deploy of ``env`` finished (nothing to reach yet).
    """
    from platform_ctl.infra.digitalocean import public_ports

    require_deployed(env, "list its endpoints")
    hosts = env.backend.hosts(env.spec)
    opened = public_ports(env.project.env_dir(env.name))
    vault: dict[str, str] | None = None
    found = []
    for service, endpoint in ENDPOINTS.items():
        host = _first_host(hosts, endpoint.group)
        if host is None or not _installed(env, endpoint):
            continue
        user = endpoint.user
        if user.startswith("vault_"):
            vault = vault if vault is not None else _vault_or_empty(env)
            user = vault.get(user, f"{user} (in the vault)")
        port = _port(env, endpoint)
        found.append(Reach(
            service=service, description=endpoint.description, host=host.name,
            url=_url(endpoint, host.private_ip, port), user=user,
            credential=f"platform-ctl credentials {env.name} {service}" if endpoint.credential else NO_CREDENTIAL,
            public=port in opened.get(endpoint.group, []),
            tunnel=f"platform-ctl ssh {env.name} {host.name} -N -L {port}:{host.private_ip}:{port}",
            tunnel_url=_url(endpoint, "localhost", port)))
    pki = env.state_dir / "pki"  # pki.ensure_ca's directory; the bundle is what its clients trust
    return Endpoints(env.name, tuple(found), CertificateAuthority(pki / CERT_FILE, pki / KEY_FILE).trust_bundle,
                     any(h.public_ip != h.private_ip for h in hosts))


def credential(env: Environment, service: str) -> str:
    """The secret of ``service`` in ``env``'s vault (only to the caller: nothing else sees it).

    Raises:
        UsageError: ``service`` has no credential in ``env`` (unknown, without authentication, or no
            host of its group), or no deploy of ``env`` finished.
        PreflightError: the vault cannot be read (missing, or no vault password).
    """
    allowed = [s for s, e in ENDPOINTS.items() if e.credential and env.spec.count(e.group) and _installed(env, e)]
    if service not in allowed:
        known = ENDPOINTS.get(service)
        why = ("has no authentication" if known and not known.credential
               else f"has no host in {env.name} (group {known.group})" if known and not env.spec.count(known.group)
               else f"is not installed in {env.name} ({known.installed_var}: false)" if known
               else "is not a service")
        raise UsageError(f"{service!r} {why}: SERVICE is one of {', '.join(allowed)}")
    require_deployed(env, "read its credentials")
    key = ENDPOINTS[service].credential
    value = _vault(env).get(key)
    if not value:
        raise UsageError(f"the vault of {env.name} has no {key}: `platform-ctl deploy {env.name}` adds it")
    return value


def _url(endpoint: Endpoint, address: str, port: int) -> str:
    host = f"[{address}]" if ":" in address else address
    return f"{endpoint.scheme}://{host}:{port}{endpoint.path}"


def _port(env: Environment, endpoint: Endpoint) -> int:
    """The endpoint's port: the environment's override of its role variable, else the catalogue's
    (the role's default; tests/unit/test_reach.py holds the two equal)."""
    value = _settings(env).get(endpoint.port_var)
    return value if isinstance(value, int) and not isinstance(value, bool) else endpoint.port


def _installed(env: Environment, endpoint: Endpoint) -> bool:
    """Whether the environment's settings leave the service installed (``installed_var`` not false)."""
    return not endpoint.installed_var or _settings(env).get(endpoint.installed_var, True) is not False


def _settings(env: Environment) -> dict[str, Any]:
    """The environment's role settings (``group_vars/all/main.yml``), {} when it has none."""
    path = env.project.env_dir(env.name) / "group_vars" / "all" / "main.yml"
    if not path.exists():
        return {}
    loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded if isinstance(loaded, dict) else {}


def _vault(env: Environment) -> dict[str, str]:
    from platform_ctl.vault import read_vault, vault_password

    return read_vault(env.project.vault_path(env.name), vault_password(env.name))


def _vault_or_empty(env: Environment) -> dict[str, str]:
    """The vault for the users' names it holds; {} when it cannot be read (the table names the key)."""
    try:
        return _vault(env)
    except PlatformCtlError:
        return {}


def _first_host(hosts: list[Host], group: str) -> Host | None:
    """The host serving a group's endpoint: the first of the group, in the spec's order."""
    return next((h for h in hosts if group in h.groups), None)
