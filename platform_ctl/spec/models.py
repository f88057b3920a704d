"""The :class:`Spec` model: every field rule and cross-field rule a deploy depends on."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, StrictBool, ValidationInfo, field_validator, model_validator

from platform_ctl.errors import PlatformCtlError
from platform_ctl.paths import check_env_name
from platform_ctl.spec.messages import _ALLOWED, _did_you_mean, _fail, _show
from platform_ctl.spec.plan import HostPlan, VolumePlan
from platform_ctl.spec.provider import (
    _MAX_VOLUME_NAME,
    _RFC1918,
    _VPC_RESERVED_ADDRESSES,
    DO_API_ENDPOINT,
    DO_REGIONS,
    DO_RESERVED_NETWORKS,
    SIZES,
    VPC_PREFIX_MAX,
    VPC_PREFIX_MIN,
    Size,
)
from platform_ctl.spec.rules import (
    DOCKER_GROUP,
    ERASURE_SET_SIZES,
    GROUP_RULES,
    VERSION_FORMATS,
    _nearest_erasure_counts,
    default_parity,
    erasure_set_size,
    pool_size_problem,
)
from platform_ctl.spec.sections import (
    _ENDPOINT_RE,
    Cidr,
    DockerSpec,
    GroupSpec,
    MinioSpec,
    StateSpec,
    _check_group,
    _Model,
    _parse_network,
)

#: Accounts the roles create or the OS owns; the admin account must not collide with them.
_RESERVED_USERS = frozenset((
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "nobody", "sshd", "messagebus", "admin", "debian", "postgres",
    "minio", "trino", "prometheus", "grafana", "node_exporter", "alertmanager", "jupyter", "dagster",
    "docker",
))  # fmt: skip

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MAX_FQDN = 253
_MAX_LABEL = 63


class Spec(_Model):
    """An environment: where it runs, its network and access rules, versions and host groups."""

    name: str
    provider: Literal["local", "digitalocean"]
    region: str
    image: Literal["debian-12-x64"] = "debian-12-x64"
    domain: str = "platform.internal"
    vpc_cidr: str
    admin_cidrs: tuple[Cidr, ...] = ()
    admin_user: str = "platform"
    ssh_public_key_file: Path | None = None
    allow_volume_deletion: StrictBool = False
    api_endpoint: str = DO_API_ENDPOINT
    state: StateSpec = Field(default_factory=StateSpec)
    versions: dict[str, str] = Field(default_factory=dict)
    minio: MinioSpec = Field(default_factory=MinioSpec)
    docker: DockerSpec = Field(default_factory=DockerSpec)
    groups: dict[str, GroupSpec]

    # ---- field rules ------------------------------------------------------------------------------

    @field_validator("name")
    @classmethod
    def _name(cls, value: str, info: ValidationInfo) -> str:
        try:
            check_env_name(value)
        except PlatformCtlError:
            raise _fail(f"{value!r} is not an environment name", _ALLOWED["name"]) from None
        expected = (info.context or {}).get("env")
        if expected is not None and value != expected:
            raise _fail(
                f"{value!r} does not match the environment directory {expected!r}",
                f"{expected!r} (the spec of inventories/<env>/ must be named <env>)",
            )
        return value

    @field_validator("region")
    @classmethod
    def _region(cls, value: str, info: ValidationInfo) -> str:
        provider = info.data.get("provider")
        if provider == "local" and value != "local":
            raise _fail(f"{value!r} is not a region of provider local", "local")
        if provider == "digitalocean" and value not in DO_REGIONS:
            raise _fail(
                f"{value!r} is not a DigitalOcean region{_did_you_mean(value, DO_REGIONS)}",
                ", ".join(DO_REGIONS),
            )
        return value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        last = value.rsplit(".", 1)[-1]
        if not _DOMAIN_RE.match(value) or last.isdigit():
            raise _fail(f"{value!r} is not a lower-case DNS domain", _ALLOWED["domain"])
        return value

    @field_validator("vpc_cidr")
    @classmethod
    def _vpc_cidr(cls, value: str, info: ValidationInfo) -> str:
        network = _parse_network(value, "IPv4")
        assert isinstance(network, ipaddress.IPv4Network)
        if not any(network.subnet_of(private) for private in _RFC1918):
            raise _fail(f"{value} is not a private (RFC 1918) network", _ALLOWED["vpc_cidr"])
        if not VPC_PREFIX_MIN <= network.prefixlen <= VPC_PREFIX_MAX:
            raise _fail(
                f"prefix /{network.prefixlen} is outside DigitalOcean's VPC sizes",
                f"a prefix from /{VPC_PREFIX_MIN} to /{VPC_PREFIX_MAX}",
            )
        if info.data.get("provider") == "digitalocean":
            for reserved in DO_RESERVED_NETWORKS:
                if network.overlaps(reserved):
                    raise _fail(
                        f"{value} overlaps {reserved}, which DigitalOcean reserves",
                        "a private network outside " + ", ".join(map(str, DO_RESERVED_NETWORKS)),
                    )
        return value

    @field_validator("admin_user")
    @classmethod
    def _admin_user(cls, value: str) -> str:
        if not _USER_RE.match(value):
            raise _fail(f"{value!r} is not a user name", _ALLOWED["admin_user"])
        if value in _RESERVED_USERS:
            raise _fail(f"{value!r} is a system or service account", _ALLOWED["admin_user"])
        return value

    @field_validator("ssh_public_key_file")
    @classmethod
    def _ssh_key(cls, value: Path | None, info: ValidationInfo) -> Path | None:
        if value is None:
            return None
        if value.suffix != ".pub":
            raise _fail(f"{str(value)!r} is not a public key file", _ALLOWED["ssh_public_key_file"])
        value = value.expanduser()
        base = (info.context or {}).get("base_dir")
        if base is not None and not value.is_absolute():
            value = Path(base) / value
        return value

    @field_validator("api_endpoint")
    @classmethod
    def _api_endpoint(cls, value: str) -> str:
        # The provider resolves some API paths against the origin and others against the base URL,
        # so a path prefix would split the calls between two places (DO-API-NOTES §1).
        if not _ENDPOINT_RE.match(value):
            raise _fail(f"{value!r} is not an API origin", _ALLOWED["api_endpoint"])
        return value.rstrip("/")

    @field_validator("admin_cidrs", "versions", "minio", "docker", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: ValidationInfo) -> Any:
        # A key whose entries are all commented out reads as null in YAML: take it as empty.
        if value is None:
            return {"admin_cidrs": (), "versions": {}, "minio": {}, "docker": {}}[str(info.field_name)]
        return value

    @field_validator("versions", mode="before")
    @classmethod
    def _versions(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value  # pydantic reports the type
        known = ", ".join(VERSION_FORMATS)
        normalised: dict[Any, Any] = {}
        for component, version in value.items():
            key = f"versions.{component}"
            if component not in VERSION_FORMATS:
                hint = _did_you_mean(str(component), VERSION_FORMATS)
                raise _fail(f"unknown component{hint}", known, key=key)
            pattern, form = VERSION_FORMATS[component]
            # YAML reads `postgresql: 15` as an int; an int is lossless, so take it as the string.
            text = str(version) if isinstance(version, int) and not isinstance(version, bool) else version
            if not isinstance(text, str):
                raise _fail(f"expected a quoted version string, got {_show(text)}", form, key=key)
            if not pattern.match(text):
                raise _fail(f"{text!r} is not a {component} version", form, key=key)
            normalised[component] = text
        return normalised

    @field_validator("groups", mode="before")
    @classmethod
    def _known_groups(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for group in value:
                if group not in GROUP_RULES:
                    raise _fail(
                        f"unknown group{_did_you_mean(str(group), GROUP_RULES)}",
                        ", ".join(GROUP_RULES),
                        key=f"groups.{group}",
                    )
        return value

    @field_validator("groups")
    @classmethod
    def _group_rules(cls, groups: dict[str, GroupSpec]) -> dict[str, GroupSpec]:
        for name, rule in GROUP_RULES.items():
            group = groups.get(name)
            if group is None:
                if rule.required:
                    raise _fail(
                        f"required group {name} is missing",
                        f"a mapping with count ({rule.count_allowed()}), size"
                        + (", volume_gb" if rule.volume == "required" else ""),
                        key=f"groups.{name}",
                    )
                continue
            _check_group(name, rule, group)
        return groups

    # ---- cross-field rules ----------------------------------------------------------------------

    @model_validator(mode="after")
    def _cross_rules(self) -> Spec:
        if self.provider == "digitalocean" and not self.admin_cidrs:
            raise _fail(
                "empty: nobody could reach the droplets over SSH from outside the VPC",
                "at least one CIDR your administrators connect from, such as 203.0.113.0/24",
                key="admin_cidrs",
            )
        if self.provider == "local":
            if self.api_endpoint != DO_API_ENDPOINT:
                raise _fail("only for provider digitalocean", "omit it for a local environment", key="api_endpoint")
            if self.state != StateSpec():
                raise _fail("only for provider digitalocean (local keeps no OpenTofu state)",
                            "omit it for a local environment", key="state")
        self._check_minio()
        self._check_names()
        self._check_vpc_capacity()
        return self

    def _check_minio(self) -> None:
        """Each server pool forms erasure sets, and the parity fits the smallest set of any pool."""
        count = self.count("minio")
        if count == 0:
            return
        pools = self.minio_pools()
        if self.minio.pools is not None:
            if not pools or sum(pools) != count:
                raise _fail(f"{list(pools)} adds up to {sum(pools)} hosts, but groups.minio.count is {count}",
                            _ALLOWED["minio.pools"], key="minio.pools")
            for size in pools:
                problem = pool_size_problem(size)
                if problem:
                    raise _fail(f"{list(pools)}: {problem}", _ALLOWED["minio.pools"], key="minio.pools")
        elif erasure_set_size(count) is None:
            nearest = " or ".join(map(str, _nearest_erasure_counts(count)))
            raise _fail(
                f"{count} hosts cannot form MinIO erasure sets (no set size from {ERASURE_SET_SIZES.start} to "
                f"{ERASURE_SET_SIZES.stop - 1} divides {count})",
                f"{GROUP_RULES['minio'].count_allowed()}; nearest: {nearest}",
                key="groups.minio.count",
            )
        set_size = min(erasure_set_size(size) or 0 for size in pools)
        most, parity = set_size // 2, self.minio_parity()
        if not 1 <= parity <= most:
            where = f"{count} hosts" if len(pools) == 1 else f"the smallest of pools {list(pools)}"
            given = f"EC:{parity}" if self.minio.parity is not None else f"null (the first pool's default EC:{parity})"
            what = (f"{given} is more than half of MinIO's erasure set of {set_size} drives ({where})"
                    if parity > most else f"{given} leaves no redundancy")
            default = default_parity(self.minio_erasure_set_size())
            raise _fail(what, f"1..{most}" + (f" (null: MinIO's default EC:{default})" if default <= most else ""),
                        key="minio.parity")

    def _check_names(self) -> None:
        owner: dict[str, str] = {}
        for host in self.hosts():
            group = host.groups[0]
            key = f"groups.{group}.name_prefix"
            if host.name in owner:
                raise _fail(
                    f"{self.prefix(group)!r} gives host {host.name}, which group {owner[host.name]} already names",
                    "a prefix no other group uses (defaults: "
                    + ", ".join(f"{g}={r.name_prefix}" for g, r in GROUP_RULES.items())
                    + ")",
                    key=key,
                )
            owner[host.name] = group
            if len(host.name) > _MAX_LABEL or len(host.fqdn) > _MAX_FQDN:
                raise _fail(
                    f"FQDN {host.fqdn} is too long",
                    "labels up to 63 and names up to 253 characters",
                    key="domain",
                )
            for volume in host.volumes:
                if len(volume.name) > _MAX_VOLUME_NAME:
                    raise _fail(
                        f"volume name {volume.name} is longer than {_MAX_VOLUME_NAME} characters",
                        "a shorter name prefix or environment name",
                        key=key,
                    )

    def _check_vpc_capacity(self) -> None:
        network = ipaddress.IPv4Network(self.vpc_cidr)
        room = network.num_addresses - _VPC_RESERVED_ADDRESSES
        planned = len(self.hosts())
        if planned > room:
            raise _fail(
                f"{self.vpc_cidr} has room for {room} hosts but the groups plan {planned}",
                "a larger network (a shorter prefix)",
                key="vpc_cidr",
            )

    # ---- derived values -----------------------------------------------------------------------

    def count(self, group: str) -> int:
        """Number of hosts in ``group`` (0 when the group is absent)."""
        spec = self.groups.get(group)
        return spec.count if spec is not None else 0

    def prefix(self, group: str) -> str:
        """Host name prefix of ``group``: its ``name_prefix`` or the rule's default."""
        spec = self.groups.get(group)
        if spec is not None and spec.name_prefix is not None:
            return spec.name_prefix
        return GROUP_RULES[group].name_prefix

    def size(self, slug: str) -> Size:
        """The :class:`Size` of a slug (KeyError for a slug not in :data:`SIZES`)."""
        return SIZES[slug]

    def hosts(self) -> list[HostPlan]:
        """Every planned host: in :data:`GROUP_RULES` order, then by index from 1."""
        plans: list[HostPlan] = []
        for group in GROUP_RULES:
            spec = self.groups.get(group)
            if spec is None:
                continue
            for index in range(1, spec.count + 1):
                name = f"{self.prefix(group)}{index}"
                volumes = (
                    (VolumePlan(f"{self.name}-{name}-data", spec.volume_gb),) if spec.volume_gb is not None else ()
                )
                plans.append(
                    HostPlan(
                        name=name,
                        groups=(group,),
                        size=SIZES[spec.size],
                        volumes=volumes,
                        fqdn=f"{name}.{self.name}.{self.domain}",
                    )
                )
        return plans

    def docker_groups(self) -> tuple[str, ...]:
        """The groups whose hosts run Docker Engine: apps, and the spec's docker.extra_groups."""
        return (DOCKER_GROUP, *self.docker.extra_groups)

    def runs_docker(self, groups: Iterable[str]) -> bool:
        """Whether Docker Engine runs on a host of ``groups`` (inventory group ``docker``)."""
        return any(group in self.docker_groups() for group in groups)

    def group_hosts(self, group: str) -> list[HostPlan]:
        """The planned hosts of one group."""
        return [host for host in self.hosts() if group in host.groups]

    def total_memory_mb(self) -> int:
        """Memory of all planned hosts together (the local backend checks it against the machine)."""
        return sum(host.size.memory_mb for host in self.hosts())

    def minio_pools(self) -> tuple[int, ...]:
        """The MinIO server pools' host counts, in host order (one pool of every host by default)."""
        if self.minio.pools is not None:
            return self.minio.pools
        return (self.count("minio"),) if self.count("minio") else ()

    def minio_erasure_set_size(self) -> int:
        """The erasure set size MinIO picks for the first pool (the one the default parity is for)."""
        size = erasure_set_size(self.minio_pools()[0])
        assert size is not None  # guaranteed by validation
        return size

    def minio_parity(self) -> int:
        """The effective MinIO parity: the spec's, else MinIO's default for the first pool's sets.

        Taken from the first pool so that adding a pool never changes the parity of the cluster.
        """
        if self.minio.parity is not None:
            return self.minio.parity
        return default_parity(self.minio_erasure_set_size())
