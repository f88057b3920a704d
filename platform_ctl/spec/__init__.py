"""The environment spec: ``inventories/<env>/platform.yml`` loaded into a typed, validated model.

Everything downstream (OpenTofu variables, the Ansible inventory, the local backend) is derived from
:class:`Spec`, so every rule a deploy depends on is checked here, before anything is touched. A wrong
value becomes one :class:`~platform_ctl.errors.SpecError` line::

    inventories/prod/platform.yml: groups.minio.count: 3 hosts ...; allowed: ...

The group rules live in one table, :data:`GROUP_RULES`; droplet sizes in :data:`SIZES`.

The modules, each importing only those above it:

- :mod:`~platform_ctl.spec.provider`: what DigitalOcean offers (sizes, regions, images, limits);
- :mod:`~platform_ctl.spec.rules`: the group rules, pinnable versions, MinIO erasure coding;
- :mod:`~platform_ctl.spec.plan`: the hosts and volumes a spec plans, and its digest;
- :mod:`~platform_ctl.spec.messages`: one-line errors and what is allowed at each key;
- :mod:`~platform_ctl.spec.sections`: the models of the spec's nested mappings;
- :mod:`~platform_ctl.spec.models`: the :class:`Spec` model and its rules;
- :mod:`~platform_ctl.spec.yamltext`: strict YAML parsing and byte-preserving edits;
- :mod:`~platform_ctl.spec.load`: reading a spec file, pydantic's errors as one line.

Every public name is importable from ``platform_ctl.spec`` itself.
"""

from __future__ import annotations

from platform_ctl.spec.load import load_spec, parse_spec
from platform_ctl.spec.models import Spec
from platform_ctl.spec.plan import HostPlan, VolumePlan, spec_digest
from platform_ctl.spec.provider import (
    DO_API_ENDPOINT,
    DO_REGIONS,
    DO_RESERVED_NETWORKS,
    IMAGES,
    PROVIDERS,
    SIZES,
    VOLUME_GB_MAX,
    VOLUME_GB_MIN,
    VPC_PREFIX_MAX,
    VPC_PREFIX_MIN,
    Size,
)
from platform_ctl.spec.rules import (
    DOCKER_GROUP,
    ERASURE_SET_SIZES,
    GROUP_RULES,
    VERSION_FORMATS,
    GroupRule,
    default_parity,
    erasure_set_size,
    pool_size_problem,
)
from platform_ctl.spec.sections import Cidr, DockerSpec, GroupSpec, MinioSpec, StateSpec
from platform_ctl.spec.yamltext import StrictSafeLoader, parse_yaml, with_group_count, with_minio_pools

__all__ = [
    "DOCKER_GROUP",
    "DO_API_ENDPOINT",
    "DO_REGIONS",
    "DO_RESERVED_NETWORKS",
    "ERASURE_SET_SIZES",
    "GROUP_RULES",
    "IMAGES",
    "PROVIDERS",
    "SIZES",
    "VERSION_FORMATS",
    "VOLUME_GB_MAX",
    "VOLUME_GB_MIN",
    "VPC_PREFIX_MAX",
    "VPC_PREFIX_MIN",
    "Cidr",
    "DockerSpec",
    "GroupRule",
    "GroupSpec",
    "HostPlan",
    "MinioSpec",
    "Size",
    "Spec",
    "StateSpec",
    "StrictSafeLoader",
    "VolumePlan",
    "default_parity",
    "erasure_set_size",
    "load_spec",
    "parse_spec",
    "parse_yaml",
    "pool_size_problem",
    "spec_digest",
    "with_group_count",
    "with_minio_pools",
]
