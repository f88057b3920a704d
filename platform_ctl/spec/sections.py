"""The models of the spec's nested mappings (minio, docker, state, groups.<group>) and CIDRs."""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, StrictBool, StrictInt, field_validator, model_validator

from platform_ctl.spec.messages import _ALLOWED, _ALLOWED_PREFIX, _did_you_mean, _fail
from platform_ctl.spec.provider import SIZES, VOLUME_GB_MAX, VOLUME_GB_MIN
from platform_ctl.spec.rules import DOCKER_GROUP, ERASURE_SET_SIZES, GROUP_RULES, GroupRule

# Prefixes must not end in a digit, so "<prefix><n>" can never equal another group's host name.
_PREFIX_RE = re.compile(r"^[a-z](?:[a-z0-9-]{0,28}[a-z-])?$")


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
