"""The environment spec: ``inventories/<env>/platform.yml`` loaded into a typed, validated model.

Everything downstream (OpenTofu variables, the Ansible inventory, the local backend) is derived from
:class:`Spec`, so every rule a deploy depends on is checked here, before anything is touched. A wrong
value becomes one :class:`~platform_ctl.errors.SpecError` line::

    inventories/prod/platform.yml: groups.minio.count: 3 hosts ...; allowed: ...

The group rules live in one table, :data:`GROUP_RULES`; droplet sizes in :data:`SIZES`.
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from platform_ctl.errors import PlatformCtlError, SpecError
from platform_ctl.paths import check_env_name

# --------------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Size:
    """A DigitalOcean droplet size; the local backend turns it into Docker CPU and memory limits."""

    slug: str
    vcpus: int
    memory_mb: int


def _sizes(*rows: tuple[str, int, int]) -> dict[str, Size]:
    return {slug: Size(slug, vcpus, memory_mb) for slug, vcpus, memory_mb in rows}


#: Droplet sizes platform-ctl knows (slug -> vCPUs, memory), from DigitalOcean's size list.
SIZES: dict[str, Size] = _sizes(
    ("s-1vcpu-1gb", 1, 1024),
    ("s-1vcpu-2gb", 1, 2048),
    ("s-2vcpu-2gb", 2, 2048),
    ("s-2vcpu-4gb", 2, 4096),
    ("s-4vcpu-8gb", 4, 8192),
    ("s-8vcpu-16gb", 8, 16384),
    ("g-2vcpu-8gb", 2, 8192),
    ("g-4vcpu-16gb", 4, 16384),
    ("g-8vcpu-32gb", 8, 32768),
    ("m-2vcpu-16gb", 2, 16384),
    ("m-4vcpu-32gb", 4, 32768),
    ("c-2", 2, 4096),
    ("c-4", 4, 8192),
    ("c-8", 8, 16384),
)

#: DigitalOcean regions droplets, block volumes and VPCs are all offered in.
DO_REGIONS: tuple[str, ...] = (
    "nyc1", "nyc3", "sfo2", "sfo3", "ams3", "sgp1", "lon1", "fra1", "tor1", "blr1", "syd1", "atl1",
)  # fmt: skip

#: The only image: the local droplet image is built from the same Debian release.
IMAGES: tuple[str, ...] = ("debian-12-x64",)

PROVIDERS: tuple[str, ...] = ("local", "digitalocean")

#: DigitalOcean block volume size limits (GB).
VOLUME_GB_MIN = 1
VOLUME_GB_MAX = 16384

#: MinIO erasure set sizes (drives per set); one drive per MinIO host here.
ERASURE_SET_SIZES = range(4, 17)


@dataclass(frozen=True)
class GroupRule:
    """What the platform needs of one host group.

    Attributes:
        group: the group (and Ansible group) name.
        required: whether the platform cannot work without at least one host of it.
        min_count: smallest count when the group has hosts (a required group needs at least this).
        max_count: largest count, or None for no limit besides the VPC's size.
        volume: whether hosts get a data volume: "required", "optional" or "none".
        name_prefix: default host name prefix; hosts are ``<prefix><n>`` with n from 1.
        min_memory_mb: smallest droplet memory the component runs in.
        erasure_coded: MinIO: the count must split into erasure sets of 4..16 drives.
    """

    group: str
    required: bool
    min_count: int
    max_count: int | None
    volume: Literal["required", "optional", "none"]
    name_prefix: str
    min_memory_mb: int
    erasure_coded: bool = False

    def count_allowed(self) -> str:
        """The allowed counts, in words, for error messages."""
        if self.erasure_coded:
            return (
                f"{self.min_count} or more hosts, divisible by an erasure set size from "
                f"{ERASURE_SET_SIZES.start} to {ERASURE_SET_SIZES.stop - 1} (e.g. 4, 6, 8, 12, 16)"
            )
        if self.min_count == self.max_count:
            text = f"exactly {self.min_count}"
        elif self.max_count is None:
            text = f"{self.min_count} or more"
        else:
            text = f"{self.min_count}..{self.max_count}"
        if not self.required:
            text = f"0 (no {self.group} hosts) or {text}"
        return text


def _rules(*rules: GroupRule) -> dict[str, GroupRule]:
    return {rule.group: rule for rule in rules}


#: Every host group, in deployment/host order. The one place group rules are defined.
#: Trino needs 4 GB to fit a useful heap beside the OS; MinIO and PostgreSQL start in 1 GB.
GROUP_RULES: dict[str, GroupRule] = _rules(
    GroupRule("trino_coordinator", True, 1, 1, "none", "trino-coord", 4096),
    GroupRule("trino_worker", False, 1, 64, "none", "trino-worker", 4096),
    GroupRule("minio", True, 4, None, "required", "minio", 1024, erasure_coded=True),
    GroupRule("postgres", True, 1, 1, "required", "pg", 1024),
    GroupRule("monitoring", True, 1, 1, "optional", "mon", 2048),
    GroupRule("apps", False, 1, 8, "optional", "apps", 2048),
)

#: Components whose version the spec may pin, and the form each version takes.
VERSION_FORMATS: dict[str, tuple[re.Pattern[str], str]] = {
    "trino": (re.compile(r"^\d{3,}$"), "a Trino release number such as 476"),
    # The controller builds MinIO from the Go module proxy, which serves no release tags.
    "minio": (
        re.compile(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$"),
        "a Go module version of github.com/minio/minio such as v0.0.0-20260212201848-7aac2a2c5b7c",
    ),
    "postgresql": (re.compile(r"^\d{2}$"), "a PostgreSQL major version such as 15"),
    "prometheus": (re.compile(r"^3\.\d+\.\d+$"), "a Prometheus 3 version such as 3.16.0"),
    "alertmanager": (re.compile(r"^\d+\.\d+\.\d+$"), "a version such as 0.35.0"),
    "grafana": (re.compile(r"^\d+\.\d+\.\d+$"), "a version such as 12.1.0"),
    "node_exporter": (re.compile(r"^\d+\.\d+\.\d+$"), "a version such as 1.12.1"),
    "jupyterlab": (re.compile(r"^\d+\.\d+\.\d+$"), "a version such as 4.4.5"),
    "dagster": (re.compile(r"^\d+\.\d+\.\d+$"), "a version such as 1.11.5"),
}

#: Ranges DigitalOcean keeps for itself (DOKS pods/services and internal use); a VPC may not overlap
#: them. https://docs.digitalocean.com/products/networking/vpc/concepts/plan-your-network/
DO_RESERVED_NETWORKS: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(net) for net in ("10.229.0.0/16", "10.244.0.0/16", "10.245.0.0/16", "10.246.0.0/24")
)

_RFC1918: tuple[ipaddress.IPv4Network, ...] = tuple(
    ipaddress.IPv4Network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
VPC_PREFIX_MIN = 16
VPC_PREFIX_MAX = 28
#: Addresses of a VPC no host can have: network, gateway and broadcast.
_VPC_RESERVED_ADDRESSES = 3

#: Accounts the roles create or the OS owns; the admin account must not collide with them.
_RESERVED_USERS = frozenset((
    "root", "daemon", "bin", "sys", "sync", "games", "man", "lp", "mail", "news", "uucp", "proxy",
    "www-data", "backup", "list", "irc", "nobody", "sshd", "messagebus", "admin", "debian", "postgres",
    "minio", "trino", "prometheus", "grafana", "node_exporter", "alertmanager", "jupyter", "dagster",
    "docker",
))  # fmt: skip

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN_RE = re.compile(rf"^{_LABEL}(?:\.{_LABEL})*$")
# Prefixes must not end in a digit, so "<prefix><n>" can never equal another group's host name.
_PREFIX_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,28}[a-z-])?$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_MAX_FQDN = 253
_MAX_LABEL = 63
#: DigitalOcean volume names: lower-case letters, digits and '-', at most 64 characters.
_MAX_VOLUME_NAME = 64

# --------------------------------------------------------------------------------------------------
# Helpers for errors
# --------------------------------------------------------------------------------------------------


def _fail(what: str, allowed: str, key: str | None = None) -> PydanticCustomError:
    """An error carrying our own one-line message; ``key`` overrides pydantic's location."""
    ctx: dict[str, Any] = {"what": what, "allowed": allowed}
    if key is not None:
        ctx["key"] = key
    return PydanticCustomError("platform_spec", "{what}; allowed: {allowed}", ctx)


def _show(value: object) -> str:
    """A short, one-line rendering of a YAML value as the user wrote it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    text = text.replace("\n", "\\n")
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _nearest_erasure_counts(count: int) -> list[int]:
    below = next((n for n in range(count - 1, 3, -1) if erasure_set_size(n)), None)
    above = next(n for n in range(max(count + 1, 4), count + 64) if erasure_set_size(n))
    return [n for n in (below, above) if n is not None]


# --------------------------------------------------------------------------------------------------
# MinIO erasure coding
# --------------------------------------------------------------------------------------------------


def erasure_set_size(drives: int) -> int | None:
    """The erasure set size MinIO picks for ``drives`` drives in one pool, or None if none fits.

    With one drive per node every divisor is symmetric across nodes, so MinIO takes the largest
    divisor from 4 to 16 (cmd/endpoint-ellipses.go, ``getSetIndexes``).
    """
    sizes = [s for s in ERASURE_SET_SIZES if drives % s == 0]
    return max(sizes) if sizes and drives > 0 else None


def pool_size_problem(hosts: int) -> str | None:
    """Why ``hosts`` cannot be one MinIO server pool (one drive per host), or None if it can."""
    if hosts < ERASURE_SET_SIZES.start:
        return (f"a pool of {hosts} hosts is smaller than MinIO's smallest erasure set "
                f"({ERASURE_SET_SIZES.start} drives)")
    if erasure_set_size(hosts) is None:
        return (f"a pool of {hosts} hosts cannot form erasure sets (no set size from {ERASURE_SET_SIZES.start} "
                f"to {ERASURE_SET_SIZES.stop - 1} divides {hosts})")
    return None


def default_parity(set_size: int) -> int:
    """MinIO's default STANDARD parity for a set size (``getDefaultParityBlocks``)."""
    if set_size <= 1:
        return 0
    if set_size <= 3:
        return 1
    if set_size <= 5:
        return 2
    if set_size <= 7:
        return 3
    return 4


# --------------------------------------------------------------------------------------------------
# Plans derived from the spec
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VolumePlan:
    """A block volume: DigitalOcean volume name ``<env>-<host>-data`` and its size."""

    name: str
    size_gb: int


@dataclass(frozen=True)
class HostPlan:
    """One planned host ("droplet"): name, Ansible groups, size, data volumes and FQDN."""

    name: str
    groups: tuple[str, ...]
    size: Size
    volumes: tuple[VolumePlan, ...]
    fqdn: str


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


def _parse_network(value: str, family: str = "") -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    """Parse ``address/prefix`` strictly, raising one-line reasons a person can act on."""
    example = "10.42.0.0/24" if family == "IPv4" else "203.0.113.0/24"
    address, slash, prefix = value.partition("/")
    if not slash:
        raise _fail(f"{value!r} has no /prefix", f"an address/prefix such as {example} (/32 for one address)")
    try:
        ip = ipaddress.IPv4Address(address) if family == "IPv4" else ipaddress.ip_address(address)
    except ValueError:
        raise _fail(
            f"{value!r} is not a CIDR: {address!r} is not an {family or 'IP'} address",
            f"an address/prefix such as {example}",
        ) from None
    if not prefix.isdigit() or int(prefix) > ip.max_prefixlen:
        raise _fail(
            f"{value!r} is not a CIDR: /{prefix} is not an IPv{ip.version} prefix",
            f"a prefix from /0 to /{ip.max_prefixlen}, as in {example}",
        )
    network = ipaddress.ip_network(value, strict=False)
    if network.network_address != ip:
        raise _fail(f"{value!r} has host bits set", f"the network address {network.with_prefixlen}")
    return network


def _check_cidr(value: str) -> str:
    _parse_network(value)
    return value


Cidr = Annotated[str, AfterValidator(_check_cidr)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MinioSpec(_Model):
    """MinIO settings.

    ``parity`` is the erasure parity EC:N (null: MinIO's default for the first pool's set).
    ``pools`` splits ``groups.minio.count`` into server pools, in host order (null: one pool of
    every host); MinIO grows by adding a pool, which ``scale-out ENV minio`` does.
    """

    parity: StrictInt | None = None
    pools: tuple[StrictInt, ...] | None = None


class DockerSpec(_Model):
    """Docker Engine: on every apps host, and on the hosts of ``extra_groups``.

    ``admin_access`` adds the admin user to the docker group, which is root-equivalent on the host.
    """

    extra_groups: tuple[str, ...] = ()
    admin_access: StrictBool = False

    @field_validator("extra_groups")
    @classmethod
    def _known(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        allowed = _ALLOWED["docker.extra_groups"]
        for group in value:
            if group not in GROUP_RULES:
                raise _fail(f"unknown group {group!r}{_did_you_mean(group, GROUP_RULES)}", allowed)
            if group == DOCKER_GROUP:
                raise _fail(f"{group} hosts always run Docker Engine", allowed)
        if len(set(value)) != len(value):
            raise _fail("a group is listed twice", allowed)
        return value


#: The group whose hosts always run Docker Engine (JupyterLab and Dagster run on it).
DOCKER_GROUP = "apps"


#: DigitalOcean's API; a rehearsal points an environment at the emulator instead.
DO_API_ENDPOINT = "https://api.digitalocean.com"
_ENDPOINT_RE = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/?$")
_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_STATE_KEY_RE = re.compile(r"^[A-Za-z0-9!_.*'()/-]{1,1024}$")


class StateSpec(_Model):
    """Where OpenTofu keeps the environment's state: a local file, or an S3-compatible bucket."""

    backend: Literal["local", "s3"] = "local"
    bucket: str | None = None
    key: str | None = None
    endpoint: str | None = None
    region: str = "us-east-1"
    lock: StrictBool = True

    @field_validator("bucket")
    @classmethod
    def _bucket(cls, value: str | None) -> str | None:
        if value is not None and not _BUCKET_RE.match(value):
            raise _fail(f"{value!r} is not a bucket name", "3-63 of a-z, 0-9, '.' and '-'")
        return value

    @field_validator("key")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and (not _STATE_KEY_RE.match(value) or value.startswith("/")):
            raise _fail(f"{value!r} is not an object key", "a relative key such as platform-ctl/prod.tfstate")
        return value

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        if value is not None and not _ENDPOINT_RE.match(value):
            raise _fail(f"{value!r} is not an endpoint URL", "an origin such as https://fra1.digitaloceanspaces.com")
        return value

    @model_validator(mode="after")
    def _s3_needs(self) -> StateSpec:
        if self.backend == "s3":
            for key in ("bucket", "endpoint"):
                if getattr(self, key) is None:
                    raise _fail("missing, but backend s3 needs it", _ALLOWED[f"state.{key}"], key=f"state.{key}")
        else:
            for key in ("bucket", "key", "endpoint"):
                if getattr(self, key) is not None:
                    raise _fail("only for backend s3", "omit it, or set backend: s3", key=f"state.{key}")
        return self


class GroupSpec(_Model):
    """One host group: how many hosts, their size, data volume size and host name prefix."""

    count: StrictInt
    size: str
    volume_gb: StrictInt | None = None
    name_prefix: str | None = None

    @field_validator("count")
    @classmethod
    def _count_not_negative(cls, value: int) -> int:
        if value < 0:
            raise _fail(f"{value} is negative", "a count of 0 or more hosts")
        return value

    @field_validator("size")
    @classmethod
    def _known_size(cls, value: str) -> str:
        if value not in SIZES:
            raise _fail(f"unknown size {value!r}{_did_you_mean(value, SIZES)}", ", ".join(SIZES))
        return value

    @field_validator("volume_gb")
    @classmethod
    def _volume_range(cls, value: int | None) -> int | None:
        if value is not None and not VOLUME_GB_MIN <= value <= VOLUME_GB_MAX:
            raise _fail(f"{value} GB is out of range", f"{VOLUME_GB_MIN}..{VOLUME_GB_MAX} (GB)")
        return value

    @field_validator("name_prefix")
    @classmethod
    def _prefix_format(cls, value: str | None) -> str | None:
        if value is not None and not _PREFIX_RE.match(value):
            raise _fail(f"{value!r} is not a usable host name prefix", _ALLOWED_PREFIX)
        return value


_ALLOWED_PREFIX = "1-30 of a-z, 0-9 and '-', starting with a letter and not ending in a digit"


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


def _check_group(name: str, rule: GroupRule, group: GroupSpec) -> None:
    """The per-group rules of :data:`GROUP_RULES` (count, volume, memory)."""
    key = f"groups.{name}"
    count = group.count
    if count == 0 and rule.required:
        raise _fail(f"0 hosts, but {name} is required", rule.count_allowed(), key=f"{key}.count")
    if count != 0 and (count < rule.min_count or (rule.max_count is not None and count > rule.max_count)):
        what = f"{count} hosts"
        if rule.erasure_coded and count < rule.min_count:
            what += f" is fewer than MinIO's smallest erasure set ({ERASURE_SET_SIZES.start} drives)"
        raise _fail(what, rule.count_allowed(), key=f"{key}.count")
    if rule.volume == "required" and group.volume_gb is None:
        raise _fail(
            f"missing, but {name} hosts keep their data on a block volume",
            f"{VOLUME_GB_MIN}..{VOLUME_GB_MAX} (GB)",
            key=f"{key}.volume_gb",
        )
    if rule.volume == "none" and group.volume_gb is not None:
        raise _fail(
            f"{name} hosts keep no data, so they get no volume",
            "omit volume_gb for this group",
            key=f"{key}.volume_gb",
        )
    memory = SIZES[group.size].memory_mb
    if memory < rule.min_memory_mb:
        fits = ", ".join(slug for slug, size in SIZES.items() if size.memory_mb >= rule.min_memory_mb)
        raise _fail(
            f"{group.size} has {memory} MB of memory, {name} needs at least {rule.min_memory_mb} MB",
            fits,
            key=f"{key}.size",
        )


# --------------------------------------------------------------------------------------------------
# What is allowed where (for pydantic's own errors: types, missing and unknown keys)
# --------------------------------------------------------------------------------------------------

_ALLOWED: dict[str, str] = {
    "name": "the environment's directory name: 1-20 of a-z, 0-9 and '-', starting with a letter",
    "provider": ", ".join(PROVIDERS),
    "region": f"for digitalocean: {', '.join(DO_REGIONS)}; for local: local",
    "image": ", ".join(IMAGES),
    "domain": "a lower-case DNS domain such as platform.internal (hosts are <host>.<env>.<domain>)",
    "vpc_cidr": (
        f"an RFC 1918 network (inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) with a prefix from "
        f"/{VPC_PREFIX_MIN} to /{VPC_PREFIX_MAX}, such as 10.42.0.0/24"
    ),
    "admin_cidrs": "a list of CIDRs such as [203.0.113.0/24]",
    "admin_user": ("a lower-case unix user name (a-z, 0-9, '_', '-'; up to 32) that is not root or a service account"),
    "ssh_public_key_file": ("null (a key generated per environment) or the path of an OpenSSH public key (*.pub)"),
    "allow_volume_deletion": "true or false",
    "api_endpoint": (f"an http(s) origin without a path: {DO_API_ENDPOINT} (default), or a DigitalOcean API "
                     "emulator such as http://127.0.0.1:8765"),
    "state": "a mapping with backend (local or s3), bucket, key, endpoint, region, lock",
    "state.backend": "local (a file under .platform/<env>/) or s3 (an S3-compatible bucket, e.g. DigitalOcean Spaces)",
    "state.bucket": "3-63 of a-z, 0-9, '.' and '-'",
    "state.key": "a relative object key such as platform-ctl/prod.tfstate (default: platform-ctl/<env>.tfstate)",
    "state.endpoint": "an origin such as https://fra1.digitaloceanspaces.com",
    "state.region": "the bucket's region; us-east-1 for DigitalOcean Spaces",
    "state.lock": "true (a lock object beside the state, OpenTofu's S3 locking) or false",
    "versions": "a mapping of component to version; components: " + ", ".join(VERSION_FORMATS),
    "minio": "a mapping with the keys parity and pools",
    "minio.parity": "null (MinIO's default) or an integer from 1 to half the erasure set size",
    "minio.pools": ("null (one pool of every MinIO host) or a list of pool sizes adding up to groups.minio.count, "
                    "each of 4 or more hosts divisible by an erasure set size from 4 to 16, e.g. [4, 4]"),
    "docker": "a mapping with the keys extra_groups and admin_access",
    "docker.extra_groups": ("a list of other groups whose hosts also run Docker Engine (apps hosts always do): "
                            + ", ".join(g for g in GROUP_RULES if g != "apps")),
    "docker.admin_access": "true (the admin user joins the docker group, which is root-equivalent) or false",
    "groups": ("a mapping of group to {count, size, volume_gb, name_prefix}; groups: " + ", ".join(GROUP_RULES)),
}


_ALLOWED_GROUP_KEYS: dict[str, str] = {
    "size": ", ".join(SIZES),
    "volume_gb": f"{VOLUME_GB_MIN}..{VOLUME_GB_MAX} (GB)",
    "name_prefix": _ALLOWED_PREFIX,
}


def _allowed_at(loc: tuple[str | int, ...]) -> str:
    if len(loc) == 2 and loc[0] == "groups":
        return "a mapping with keys " + ", ".join(GroupSpec.model_fields)
    if len(loc) >= 3 and loc[0] == "groups":
        rule = GROUP_RULES.get(str(loc[1]))
        if loc[2] == "count" and rule is not None:
            return rule.count_allowed()
        return _ALLOWED_GROUP_KEYS.get(str(loc[2]), _ALLOWED["groups"])
    if loc and loc[0] == "admin_cidrs":
        return _ALLOWED["admin_cidrs"]
    return _ALLOWED.get(".".join(str(part) for part in loc), "see the comments in the spec template")


def _keys_at(loc: tuple[str | int, ...]) -> list[str]:
    """The keys the mapping at ``loc`` may have."""
    if not loc:
        return list(Spec.model_fields)
    if loc == ("minio",):
        return list(MinioSpec.model_fields)
    if loc == ("docker",):
        return list(DockerSpec.model_fields)
    if loc == ("state",):
        return list(StateSpec.model_fields)
    if len(loc) == 2 and loc[0] == "groups":
        return list(GroupSpec.model_fields)
    return []


def _key_path(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


_NOUNS: dict[str, str] = {"provider": "a provider", "image": "a supported image"}

_EXPECTED: dict[str, str] = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "path_type": "a file path",
}


def _detail(error: Any) -> tuple[str, str]:
    """(key path, detail) for one pydantic error."""
    kind: str = error["type"]
    loc: tuple[str | int, ...] = tuple(error["loc"])
    ctx = error.get("ctx") or {}
    if kind == "platform_spec":
        return ctx.get("key") or _key_path(loc), f"{ctx['what']}; allowed: {ctx['allowed']}"
    key = _key_path(loc)
    if kind in {"extra_forbidden", "invalid_key"}:
        key = _key_path([*loc[:-1], str(loc[-1])])
        allowed = _keys_at(loc[:-1])
        return key, f"unknown key{_did_you_mean(str(loc[-1]), allowed)}; allowed: {', '.join(allowed)}"
    if kind == "missing":
        return key, f"required key is missing; allowed: {_allowed_at(loc)}"
    if kind == "literal_error":
        noun = _NOUNS.get(key, "allowed here")
        return key, f"{_show(error['input'])} is not {noun}; allowed: {_allowed_at(loc)}"
    if kind in _EXPECTED:
        return key, f"expected {_EXPECTED[kind]}, got {_show(error['input'])}; allowed: {_allowed_at(loc)}"
    message = str(error["msg"]).replace("\n", " ")
    return key, f"{message}; allowed: {_allowed_at(loc)}"


def _from_validation_error(path: object, exc: ValidationError) -> SpecError:
    """The first error, preferring an unknown key: a typo also makes the intended key "missing"."""
    errors = exc.errors(include_url=False)
    unknown = [e for e in errors if e["type"] in {"extra_forbidden", "invalid_key"}]
    key, detail = _detail((unknown or errors)[0])
    return SpecError(path, key, detail)


# --------------------------------------------------------------------------------------------------
# YAML
# --------------------------------------------------------------------------------------------------


class _DuplicateKeyError(Exception):
    def __init__(self, key_path: str, line: int, first_line: int) -> None:
        super().__init__(key_path)
        self.key_path = key_path
        self.line = line
        self.first_line = first_line


class StrictSafeLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a mapping key given twice (PyYAML silently keeps the last one)."""

    def construct_document(self, node: yaml.Node) -> Any:
        _check_duplicates(node, [])
        return super().construct_document(node)


def _check_duplicates(node: yaml.Node, path: list[str | int]) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *anchor` overrides are deliberate
            if isinstance(key_node, yaml.ScalarNode):
                ident = (key_node.tag, key_node.value)
                line = key_node.start_mark.line + 1
                if ident in seen:
                    raise _DuplicateKeyError(_key_path([*path, key_node.value]), line, seen[ident])
                seen[ident] = line
                _check_duplicates(value_node, [*path, key_node.value])
            else:
                _check_duplicates(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _check_duplicates(item, [*path, index])


def parse_yaml(text: str, path: object) -> Any:
    """Parse one YAML document strictly; syntax errors and duplicate keys become SpecError."""
    try:
        return yaml.load(text, Loader=StrictSafeLoader)  # noqa: S506 - StrictSafeLoader is a SafeLoader
    except _DuplicateKeyError as dup:
        raise SpecError(
            path,
            dup.key_path,
            f"duplicate key (line {dup.line}, first given at line {dup.first_line}); allowed: each key once",
        ) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = " ".join(str(exc.problem or exc.context or "invalid YAML").split())
        if exc.problem and exc.context and exc.context_mark and exc.context_mark != mark:
            start = exc.context_mark
            problem += f" ({exc.context} from line {start.line + 1}, column {start.column + 1})"
        allowed = "valid YAML (check indentation and quoting)"
        raise SpecError(path, "", f"YAML syntax error{where}: {problem}; allowed: {allowed}") from None
    except yaml.YAMLError as exc:
        raise SpecError(path, "", f"YAML error: {' '.join(str(exc).split())}; allowed: valid YAML") from None


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _env_of(path: Path) -> str | None:
    """``<env>`` when ``path`` is ``.../inventories/<env>/platform.yml``."""
    if path.name == "platform.yml" and path.parent.parent.name == "inventories":
        return path.parent.name
    return None


def load_spec(path: Path, env: str | None = None) -> Spec:
    """Read and validate an environment spec; only reads ``path`` (and checks the SSH key exists).

    Args:
        path: the spec file, usually ``inventories/<env>/platform.yml``.
        env: the environment the spec must be named after; by default the directory name when
            ``path`` is ``inventories/<env>/platform.yml``, otherwise not checked.

    Raises:
        SpecError: one line naming the file, the key path and what is allowed.
    """
    path = Path(path)
    expected = env if env is not None else _env_of(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        hint = f"platform-ctl init {expected}" if expected else "platform-ctl init <env>"
        detail = f"file not found; allowed: an environment spec (`{hint}` creates it)"
        raise SpecError(path, "", detail) from None
    except IsADirectoryError:
        raise SpecError(path, "", "is a directory; allowed: the spec file platform.yml") from None
    except UnicodeDecodeError as exc:
        raise SpecError(path, "", f"not UTF-8 text ({exc.reason}); allowed: a UTF-8 YAML file") from None
    except OSError as exc:
        raise SpecError(path, "", f"cannot be read ({exc.strerror}); allowed: a readable file") from None
    return parse_spec(text, path, expected)


def parse_spec(text: str, path: Path, expected: str | None) -> Spec:
    """Validate the spec ``text`` as the content of ``path`` (named in errors), like :func:`load_spec`.

    ``expected`` is the environment the spec must be named after (None: not checked).
    """
    data = parse_yaml(text, path)
    if data is None:
        detail = "the file is empty; allowed: a mapping of spec keys (see `platform-ctl init`)"
        raise SpecError(path, "", detail)
    if not isinstance(data, dict):
        raise SpecError(
            path,
            "",
            f"the top level is {_show(data)}, not a mapping; allowed: a mapping of spec keys: "
            + ", ".join(Spec.model_fields),
        )
    try:
        spec = Spec.model_validate(data, context={"env": expected, "base_dir": path.parent})
    except ValidationError as exc:
        raise _from_validation_error(path, exc) from None
    key_file = spec.ssh_public_key_file
    if key_file is not None and not key_file.is_file():
        raise SpecError(
            path,
            "ssh_public_key_file",
            f"{key_file} does not exist; allowed: {_ALLOWED['ssh_public_key_file']}",
        )
    return spec


def _child(node: yaml.Node | None, key: str) -> yaml.Node | None:
    """The value node of ``key`` in a YAML mapping node, or None."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                return value_node
    return None


def with_group_count(text: str, path: Path, group: str, count: int) -> str:
    """The spec ``text`` with ``groups.<group>.count`` set to ``count``, every other byte unchanged.

    Day-2 commands change one number of a file people edit, so comments, order and flow style stay
    as they wrote them; the result must still be validated (:func:`parse_spec`).
    """
    root = yaml.compose(text, Loader=StrictSafeLoader)
    node = _child(_child(_child(root, "groups"), group), "count")
    if not isinstance(node, yaml.ScalarNode):
        raise SpecError(path, f"groups.{group}.count", f"not given; allowed: {_ALLOWED['groups']}")
    start, end = node.start_mark.index, node.end_mark.index
    return text[:start] + str(count) + text[end:]


def with_minio_pools(text: str, pools: Sequence[int]) -> str:
    """The spec ``text`` with ``minio.pools`` set to ``pools`` (flow style), every other byte unchanged.

    An existing ``pools`` value is replaced in place; otherwise the key is added as the first key of
    the ``minio`` mapping (block or flow), or a ``minio`` mapping is appended.
    """
    value = "[" + ", ".join(str(int(size)) for size in pools) + "]"
    root = yaml.compose(text, Loader=StrictSafeLoader)
    minio = _child(root, "minio")
    existing = _child(minio, "pools")
    if existing is not None:
        start, end = existing.start_mark.index, existing.end_mark.index
        return text[:start] + value + text[end:]
    if isinstance(minio, yaml.MappingNode) and minio.flow_style:
        inside = minio.start_mark.index + 1  # after "{"
        return text[:inside] + f"pools: {value}" + (", " if minio.value else "") + text[inside:]
    if isinstance(minio, yaml.MappingNode) and minio.value:
        first = minio.value[0][0].start_mark
        return text[:first.index] + f"pools: {value}\n" + " " * first.column + text[first.index:]
    if minio is not None:  # `minio:` with no value
        start, end = minio.start_mark.index, minio.end_mark.index
        return text[:start] + ("" if text[start - 1:start] == " " else " ") + f"{{pools: {value}}}" + text[end:]
    return text + ("" if text.endswith("\n") or not text else "\n") + f"minio:\n  pools: {value}\n"


def spec_digest(spec: Spec) -> str:
    """A stable sha256 of what the spec deploys, for change detection.

    Normalised so that equivalent specs hash alike: absent groups and groups of count 0, a default
    name prefix given or not, and MinIO's default parity or single pool given or not.
    """
    data = spec.model_dump(mode="json")
    data["groups"] = {
        group: {**spec.groups[group].model_dump(mode="json"), "name_prefix": spec.prefix(group)}
        for group in GROUP_RULES
        if spec.count(group) > 0
    }
    data["minio"] = {**data["minio"], "parity": spec.minio_parity(), "pools": list(spec.minio_pools())}
    payload = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()
