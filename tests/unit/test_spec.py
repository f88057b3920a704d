"""The environment spec: shipped specs load, every bad spec fails with its own one-line error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from platform_ctl.errors import SpecError
from platform_ctl.paths import COLLECTION_ROOT
from platform_ctl.spec import (
    GROUP_RULES,
    SIZES,
    HostPlan,
    Spec,
    VolumePlan,
    default_parity,
    erasure_set_size,
    load_spec,
    parse_spec,
    spec_digest,
    with_minio_pools,
)

SPECS = Path(__file__).parent / "specs"
BAD = SPECS / "bad"
INVENTORIES = COLLECTION_ROOT / "inventories"

GROUPS = "trino_coordinator, trino_worker, minio, postgres, monitoring, apps"
SIZE_SLUGS = (
    "s-1vcpu-1gb, s-1vcpu-2gb, s-2vcpu-2gb, s-2vcpu-4gb, s-4vcpu-8gb, s-8vcpu-16gb, g-2vcpu-8gb, "
    "g-4vcpu-16gb, g-8vcpu-32gb, m-2vcpu-16gb, m-4vcpu-32gb, c-2, c-4, c-8"
)
TOP_KEYS = (
    "name, provider, region, image, domain, vpc_cidr, admin_cidrs, admin_user, ssh_public_key_file, "
    "allow_volume_deletion, api_endpoint, state, versions, minio, docker, groups"
)
MINIO_COUNTS = "4 or more hosts, divisible by an erasure set size from 4 to 16 (e.g. 4, 6, 8, 12, 16)"
POOLS = ("null (one pool of every MinIO host) or a list of pool sizes adding up to groups.minio.count, each of 4 or "
         "more hosts divisible by an erasure set size from 4 to 16, e.g. [4, 4]")

#: bad spec file -> the error after "<path>: ". Every file is loaded as environment "local".
BAD_SPECS: dict[str, str] = {
    "do_api_endpoint_path.yml": (
        "api_endpoint: 'http://127.0.0.1:8765/v2' is not an API origin; allowed: an http(s) origin without a path: "
        "https://api.digitalocean.com (default), or a DigitalOcean API emulator such as http://127.0.0.1:8765"
    ),
    "do_state_s3_no_bucket.yml": (
        "state.bucket: missing, but backend s3 needs it; allowed: 3-63 of a-z, 0-9, '.' and '-'"
    ),
    "local_state_given.yml": (
        "state: only for provider digitalocean (local keeps no OpenTofu state); "
        "allowed: omit it for a local environment"
    ),
    "docker_unknown_group.yml": (
        "docker.extra_groups: unknown group 'trino_workers' (did you mean 'trino_worker'?); allowed: a list of other "
        "groups whose hosts also run Docker Engine (apps hosts always do): trino_coordinator, trino_worker, minio, "
        "postgres, monitoring"
    ),
    "docker_apps_listed.yml": (
        "docker.extra_groups: apps hosts always run Docker Engine; allowed: a list of other groups whose hosts also "
        "run Docker Engine (apps hosts always do): trino_coordinator, trino_worker, minio, postgres, monitoring"
    ),
    "docker_admin_access_word.yml": (
        "docker.admin_access: expected true or false, got 'yes'; allowed: true (the admin user joins the docker "
        "group, which is root-equivalent) or false"
    ),
    "unknown_top_level_key.yml": f"regoin: unknown key (did you mean 'region'?); allowed: {TOP_KEYS}",
    "unknown_group.yml": f"groups.trino_workers: unknown group (did you mean 'trino_worker'?); allowed: {GROUPS}",
    "unknown_group_key.yml": (
        "groups.minio.volume: unknown key (did you mean 'volume_gb'?); allowed: count, size, volume_gb, name_prefix"
    ),
    "count_wrong_type.yml": (
        "groups.trino_worker.count: expected an integer, got 'two'; allowed: 0 (no trino_worker hosts) or 1..64"
    ),
    "required_group_zero.yml": "groups.postgres.count: 0 hosts, but postgres is required; allowed: exactly 1",
    "required_group_missing.yml": (
        "groups.monitoring: required group monitoring is missing; allowed: a mapping with count (exactly 1), size"
    ),
    "coordinator_count_two.yml": "groups.trino_coordinator.count: 2 hosts; allowed: exactly 1",
    "apps_count_nine.yml": "groups.apps.count: 9 hosts; allowed: 0 (no apps hosts) or 1..8",
    "minio_count_three.yml": (
        f"groups.minio.count: 3 hosts is fewer than MinIO's smallest erasure set (4 drives); allowed: {MINIO_COUNTS}"
    ),
    "minio_count_seventeen.yml": (
        "groups.minio.count: 17 hosts cannot form MinIO erasure sets (no set size from 4 to 16 divides 17); "
        f"allowed: {MINIO_COUNTS}; nearest: 16 or 18"
    ),
    "admin_cidr_bad_prefix.yml": (
        "admin_cidrs[0]: '10.0.0.0/33' is not a CIDR: /33 is not an IPv4 prefix; "
        "allowed: a prefix from /0 to /32, as in 203.0.113.0/24"
    ),
    "admin_cidr_host_bits.yml": (
        "admin_cidrs[0]: '203.0.113.7/24' has host bits set; allowed: the network address 203.0.113.0/24"
    ),
    "do_no_admin_cidrs.yml": (
        "admin_cidrs: empty: nobody could reach the droplets over SSH from outside the VPC; "
        "allowed: at least one CIDR your administrators connect from, such as 203.0.113.0/24"
    ),
    "vpc_not_private.yml": (
        "vpc_cidr: 8.8.8.0/24 is not a private (RFC 1918) network; allowed: an RFC 1918 network "
        "(inside 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16) with a prefix from /16 to /28, such as 10.42.0.0/24"
    ),
    "vpc_prefix_too_large.yml": (
        "vpc_cidr: prefix /8 is outside DigitalOcean's VPC sizes; allowed: a prefix from /16 to /28"
    ),
    "vpc_do_reserved.yml": (
        "vpc_cidr: 10.244.8.0/24 overlaps 10.244.0.0/16, which DigitalOcean reserves; allowed: a private "
        "network outside 10.229.0.0/16, 10.244.0.0/16, 10.245.0.0/16, 10.246.0.0/24"
    ),
    "vpc_too_small.yml": (
        "vpc_cidr: 10.42.0.0/28 has room for 13 hosts but the groups plan 17; "
        "allowed: a larger network (a shorter prefix)"
    ),
    "minio_volume_missing.yml": (
        "groups.minio.volume_gb: missing, but minio hosts keep their data on a block volume; allowed: 1..16384 (GB)"
    ),
    "trino_volume_given.yml": (
        "groups.trino_worker.volume_gb: trino_worker hosts keep no data, so they get no volume; "
        "allowed: omit volume_gb for this group"
    ),
    "volume_gb_out_of_range.yml": "groups.minio.volume_gb: 20000 GB is out of range; allowed: 1..16384 (GB)",
    "duplicate_host_names.yml": (
        "groups.apps.name_prefix: 'minio' gives host minio1, which group minio already names; "
        "allowed: a prefix no other group uses (defaults: trino_coordinator=trino-coord, "
        "trino_worker=trino-worker, minio=minio, postgres=pg, monitoring=mon, apps=apps)"
    ),
    "duplicate_yaml_key.yml": ("groups.minio: duplicate key (line 22, first given at line 21); allowed: each key once"),
    "unknown_provider.yml": "provider: 'aws' is not a provider; allowed: local, digitalocean",
    "unknown_size.yml": (
        f"groups.minio.size: unknown size 's-1vcpu-3gb' (did you mean 's-1vcpu-2gb'?); allowed: {SIZE_SLUGS}"
    ),
    "trino_too_small.yml": (
        "groups.trino_coordinator.size: s-1vcpu-1gb has 1024 MB of memory, trino_coordinator needs at least "
        "4096 MB; allowed: s-2vcpu-4gb, s-4vcpu-8gb, s-8vcpu-16gb, g-2vcpu-8gb, g-4vcpu-16gb, g-8vcpu-32gb, "
        "m-2vcpu-16gb, m-4vcpu-32gb, c-2, c-4, c-8"
    ),
    "do_region_unknown.yml": (
        "region: 'fra2' is not a DigitalOcean region (did you mean 'fra1'?); "
        "allowed: nyc1, nyc3, sfo2, sfo3, ams3, sgp1, lon1, fra1, tor1, blr1, syd1, atl1"
    ),
    "local_region_not_local.yml": "region: 'fra1' is not a region of provider local; allowed: local",
    "parity_too_high.yml": (
        "minio.parity: EC:3 is more than half of MinIO's erasure set of 4 drives (4 hosts); "
        "allowed: 1..2 (null: MinIO's default EC:2)"
    ),
    "pools_parity_too_high.yml": (
        "minio.parity: EC:3 is more than half of MinIO's erasure set of 4 drives (the smallest of pools [8, 4]); "
        "allowed: 1..2"
    ),
    "pools_default_parity_too_high.yml": (
        "minio.parity: null (the first pool's default EC:4) is more than half of MinIO's erasure set of 4 drives "
        "(the smallest of pools [8, 4]); allowed: 1..2"
    ),
    "pools_sum_mismatch.yml": f"minio.pools: [4, 4] adds up to 8 hosts, but groups.minio.count is 12; allowed: {POOLS}",
    "pools_pool_of_three.yml": (
        "minio.pools: [4, 3]: a pool of 3 hosts is smaller than MinIO's smallest erasure set (4 drives); "
        f"allowed: {POOLS}"
    ),
    "pools_pool_of_seventeen.yml": (
        "minio.pools: [4, 17]: a pool of 17 hosts cannot form erasure sets (no set size from 4 to 16 divides 17); "
        f"allowed: {POOLS}"
    ),
    "unknown_version_component.yml": (
        "versions.trinodb: unknown component (did you mean 'trino'?); "
        "allowed: node_exporter, minio, postgresql, prometheus, alertmanager, grafana, trino, jupyterlab, dagster"
    ),
    "version_format.yml": (
        "versions.minio: 'latest' is not a minio version; "
        "allowed: a Go module version of github.com/minio/minio such as v0.0.0-20260212201848-7aac2a2c5b7c"
    ),
    "yaml_syntax_error.yml": (
        "YAML syntax error at line 23, column 13: expected ',' or '}', but got ':' "
        "(while parsing a flow mapping from line 22, column 13); "
        "allowed: valid YAML (check indentation and quoting)"
    ),
    "name_mismatch.yml": (
        "name: 'staging' does not match the environment directory 'local'; "
        "allowed: 'local' (the spec of inventories/<env>/ must be named <env>)"
    ),
    "admin_user_root.yml": (
        "admin_user: 'root' is a system or service account; allowed: a lower-case unix user name "
        "(a-z, 0-9, '_', '-'; up to 32) that is not root or a service account"
    ),
    "bool_as_string.yml": ("allow_volume_deletion: expected true or false, got 'false'; allowed: true or false"),
    "empty.yml": "the file is empty; allowed: a mapping of spec keys (see `platform-ctl init`)",
    "top_level_list.yml": f"the top level is a list, not a mapping; allowed: a mapping of spec keys: {TOP_KEYS}",
}


def _error(path: Path, env: str | None = "local") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_spec(path, env=env)
    return info.value


def test_every_bad_spec_file_is_listed() -> None:
    assert sorted(p.name for p in BAD.glob("*.yml")) == sorted(BAD_SPECS)
    assert len(BAD_SPECS) >= 14


@pytest.mark.parametrize(("name", "expected"), sorted(BAD_SPECS.items()))
def test_bad_spec_gives_its_one_line_error(name: str, expected: str) -> None:
    path = BAD / name
    error = _error(path)
    assert str(error) == f"{path}: {expected}"
    assert "\n" not in str(error)
    assert error.exit_code == 2


def test_error_key_and_detail_are_separate() -> None:
    error = _error(BAD / "minio_count_three.yml")
    assert error.key == "groups.minio.count"
    assert error.detail.startswith("3 hosts")
    assert "; allowed: " in error.detail


def test_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    path = tmp_path / "inventories" / "staging" / "platform.yml"
    assert str(_error(path, env=None)) == (
        f"{path}: file not found; allowed: an environment spec (`platform-ctl init staging` creates it)"
    )


def test_name_must_match_the_inventory_directory(tmp_path: Path) -> None:
    path = tmp_path / "inventories" / "staging" / "platform.yml"
    path.parent.mkdir(parents=True)
    path.write_text((INVENTORIES / "local" / "platform.yml").read_text())
    error = _error(path, env=None)
    assert error.key == "name"
    assert "'local' does not match the environment directory 'staging'" in error.detail


def test_unknown_key_wins_over_the_missing_key_it_caused() -> None:
    # `regoin` also leaves `region` missing; the typo is what the user must fix.
    error = _error(BAD / "unknown_top_level_key.yml")
    assert error.key == "regoin"


# ---- good specs ----------------------------------------------------------------------------------


def test_shipped_local_spec() -> None:
    spec = load_spec(INVENTORIES / "local" / "platform.yml")
    assert spec.provider == "local"
    assert [h.name for h in spec.hosts()] == [
        "trino-coord1", "trino-worker1", "minio1", "minio2", "minio3", "minio4", "pg1", "mon1", "apps1",
    ]  # fmt: skip
    # This machine has 24 GiB; the local environment must leave room for the controller and for
    # rehearsing a scale-out of one Trino worker (4 GiB) within deploy's budget (machine - 2 GiB).
    assert spec.total_memory_mb() == 17 * 1024
    assert spec.total_memory_mb() + 4096 <= 22 * 1024
    assert spec.admin_cidrs == ("127.0.0.1/32",)
    assert spec.minio_parity() == 2
    assert spec.minio_erasure_set_size() == 4


def test_shipped_prod_spec() -> None:
    spec = load_spec(INVENTORIES / "prod" / "platform.yml", env="prod")
    assert spec.provider == "digitalocean"
    assert spec.region == "fra1"
    names = [h.name for h in spec.hosts()]
    assert names == [
        "trino-coord1", "trino-worker1", "trino-worker2", "minio1", "minio2", "minio3", "minio4",
        "pg1", "mon1", "apps1",
    ]  # fmt: skip
    minio1 = spec.hosts()[3]
    assert minio1 == HostPlan(
        name="minio1",
        groups=("minio",),
        size=SIZES["s-2vcpu-4gb"],
        volumes=(VolumePlan("prod-minio1-data", 100),),
        fqdn="minio1.prod.platform.internal",
    )
    assert spec.size("g-4vcpu-16gb").memory_mb == 16384


def test_minimal_spec_takes_defaults() -> None:
    spec = load_spec(SPECS / "good" / "minimal_do.yml")
    assert spec.image == "debian-12-x64"
    assert spec.domain == "platform.internal"
    assert spec.admin_user == "platform"
    assert spec.allow_volume_deletion is False
    assert spec.versions == {}
    assert spec.count("trino_worker") == 0
    assert [h.name for h in spec.group_hosts("minio")] == [f"minio{i}" for i in range(1, 7)]
    assert spec.group_hosts("monitoring")[0].volumes == ()  # the monitoring volume is optional
    # 6 drives: one set of 6, MinIO's default parity EC:3.
    assert spec.minio_erasure_set_size() == 6
    assert spec.minio_parity() == 3


def test_minio_pools_split_the_hosts_and_keep_the_first_pools_parity() -> None:
    data = _local_data()
    data["minio"] = {"parity": None, "pools": [4, 8]}
    data["groups"]["minio"]["count"] = 12
    spec = parse_spec(yaml.safe_dump(data), Path("platform.yml"), "local")
    assert spec.minio_pools() == (4, 8)
    # MinIO takes the default parity of the first pool for every pool (newErasureServerPools).
    assert spec.minio_parity() == 2
    single = load_spec(INVENTORIES / "local" / "platform.yml", env="local")
    assert single.minio_pools() == (4,)
    # An explicit single pool is the same deployment as none given.
    data = _local_data()
    data["minio"]["pools"] = [4]
    assert spec_digest(parse_spec(yaml.safe_dump(data), Path("platform.yml"), "local")) == spec_digest(single)


@pytest.mark.parametrize(("text", "expected"), [
    ("minio:\n  parity: 2  # EC:2\ngroups: {}\n", "minio:\n  pools: [4, 4]\n  parity: 2  # EC:2\ngroups: {}\n"),
    ("minio:\n  pools: [4]  # one\n  parity: 2\n", "minio:\n  pools: [4, 4]  # one\n  parity: 2\n"),
    ("minio: {parity: 2}\n", "minio: {pools: [4, 4], parity: 2}\n"),
    ("minio: {}\n", "minio: {pools: [4, 4]}\n"),
    ("minio:\ngroups: {}\n", "minio: {pools: [4, 4]}\ngroups: {}\n"),
    ("name: x", "name: x\nminio:\n  pools: [4, 4]\n"),
])
def test_with_minio_pools_changes_only_the_pools(text: str, expected: str) -> None:
    assert with_minio_pools(text, [4, 4]) == expected


def _local_data() -> dict:
    import yaml

    return yaml.safe_load((INVENTORIES / "local" / "platform.yml").read_text())


def test_name_prefix_renames_hosts_and_volumes() -> None:
    data = _local_data()
    data["groups"]["minio"]["name_prefix"] = "store-"
    spec = Spec.model_validate(data)
    minio = spec.group_hosts("minio")
    assert [h.name for h in minio] == ["store-1", "store-2", "store-3", "store-4"]
    assert minio[0].volumes == (VolumePlan("local-store-1-data", 10),)
    assert minio[0].fqdn == "store-1.local.platform.internal"


def test_hosts_follow_group_rules_order_not_yaml_order() -> None:
    data = _local_data()
    data["groups"] = dict(reversed(list(data["groups"].items())))
    assert [h.groups[0] for h in Spec.model_validate(data).hosts()] == [
        g for g in GROUP_RULES for _ in range(_local_data()["groups"][g]["count"])
    ]


def test_unquoted_integer_versions_are_taken_as_strings() -> None:
    data = _local_data()
    data["versions"] = {"trino": 476, "postgresql": 15}
    assert Spec.model_validate(data).versions == {"trino": "476", "postgresql": "15"}


def test_model_is_frozen() -> None:
    from pydantic import ValidationError

    spec = Spec.model_validate(_local_data())
    with pytest.raises(ValidationError):
        spec.name = "other"  # type: ignore[misc]


def test_ssh_key_path_is_relative_to_the_spec(tmp_path: Path) -> None:
    import yaml

    env_dir = tmp_path / "inventories" / "local"
    env_dir.mkdir(parents=True)
    data = _local_data()
    data["ssh_public_key_file"] = "keys/admin.pub"
    (env_dir / "platform.yml").write_text(yaml.safe_dump(data))
    error = _error(env_dir / "platform.yml")
    assert error.key == "ssh_public_key_file"
    assert f"{env_dir / 'keys' / 'admin.pub'} does not exist" in error.detail
    (env_dir / "keys").mkdir()
    (env_dir / "keys" / "admin.pub").write_text("ssh-ed25519 AAAA test\n")
    assert load_spec(env_dir / "platform.yml").ssh_public_key_file == env_dir / "keys" / "admin.pub"


def test_ssh_private_key_is_refused() -> None:
    data = _local_data()
    data["ssh_public_key_file"] = "~/.ssh/id_ed25519"
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="is not a public key file"):
        Spec.model_validate(data)


# ---- derived values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("drives", "set_size"),
    [(3, None), (4, 4), (5, 5), (6, 6), (8, 8), (12, 12), (16, 16), (17, None), (18, 9), (24, 12), (32, 16),
     (34, None)],
)  # fmt: skip
def test_erasure_set_size_is_the_largest_divisor_from_4_to_16(drives: int, set_size: int | None) -> None:
    assert erasure_set_size(drives) == set_size


@pytest.mark.parametrize(("set_size", "parity"), [(4, 2), (5, 2), (6, 3), (7, 3), (8, 4), (16, 4)])
def test_default_parity_follows_minio(set_size: int, parity: int) -> None:
    assert default_parity(set_size) == parity


def test_digest_is_stable_and_ignores_equivalent_spellings() -> None:
    base = Spec.model_validate(_local_data())
    same = _local_data()
    same["groups"]["minio"]["name_prefix"] = "minio"  # the default, spelled out
    same["groups"] = dict(reversed(list(same["groups"].items())))
    assert spec_digest(Spec.model_validate(same)) == spec_digest(base)

    no_apps = _local_data()
    del no_apps["groups"]["apps"]
    zero_apps = _local_data()
    zero_apps["groups"]["apps"]["count"] = 0
    assert spec_digest(Spec.model_validate(no_apps)) == spec_digest(Spec.model_validate(zero_apps))

    changed = _local_data()
    changed["groups"]["trino_worker"]["count"] = 2
    assert spec_digest(Spec.model_validate(changed)) != spec_digest(base)
    assert len(spec_digest(base)) == 64


def test_group_rules_table_is_complete() -> None:
    assert list(GROUP_RULES) == ["trino_coordinator", "trino_worker", "minio", "postgres", "monitoring", "apps"]
    assert {g for g, r in GROUP_RULES.items() if r.required} == {
        "trino_coordinator", "minio", "postgres", "monitoring",
    }  # fmt: skip
    assert {g for g, r in GROUP_RULES.items() if r.volume == "required"} == {"minio", "postgres"}
    for slug in ("s-1vcpu-1gb", "s-1vcpu-2gb", "s-2vcpu-2gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "s-8vcpu-16gb",
                 "g-2vcpu-8gb", "g-4vcpu-16gb", "m-2vcpu-16gb", "c-2", "c-4"):  # fmt: skip
        assert SIZES[slug].slug == slug


def test_docker_runs_on_apps_hosts_and_the_extra_groups() -> None:
    spec = load_spec(INVENTORIES / "local" / "platform.yml")
    assert [h.name for h in spec.hosts() if spec.runs_docker(h.groups)] == ["apps1"]
    data = yaml.safe_load((INVENTORIES / "local" / "platform.yml").read_text())
    data["docker"] = {"extra_groups": ["trino_worker"], "admin_access": True}
    spec = Spec.model_validate(data, context={"env": "local"})
    assert [h.name for h in spec.hosts() if spec.runs_docker(h.groups)] == ["trino-worker1", "apps1"]
    assert spec.docker.admin_access is True
