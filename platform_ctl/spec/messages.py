"""One-line spec errors: what is wrong, and what is allowed at each key."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any

from pydantic_core import PydanticCustomError

from platform_ctl.spec.provider import (
    DO_API_ENDPOINT,
    DO_REGIONS,
    IMAGES,
    PROVIDERS,
    SIZES,
    VOLUME_GB_MAX,
    VOLUME_GB_MIN,
    VPC_PREFIX_MAX,
    VPC_PREFIX_MIN,
)
from platform_ctl.spec.rules import GROUP_RULES, VERSION_FORMATS


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


def _key_path(loc: Iterable[str | int]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    return text


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


_ALLOWED_PREFIX = "1-30 of a-z, 0-9 and '-', starting with a letter and not ending in a digit"


_ALLOWED_GROUP_KEYS: dict[str, str] = {
    "size": ", ".join(SIZES),
    "volume_gb": f"{VOLUME_GB_MIN}..{VOLUME_GB_MAX} (GB)",
    "name_prefix": _ALLOWED_PREFIX,
}
