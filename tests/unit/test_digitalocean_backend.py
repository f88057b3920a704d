"""The digitalocean backend's pure parts: variables from the spec, error messages, retries."""

from __future__ import annotations

from pathlib import Path

import pytest

from platform_ctl.errors import InfrastructureError, PreflightError
from platform_ctl.infra import Access
from platform_ctl.infra.digitalocean import DigitalOceanBackend, group_ports, public_ports, service_rules
from platform_ctl.infra.tofu import Diagnostic, PlanSummary, RateLimited, Tofu, classify, resource_host
from platform_ctl.infra.toolchain import Toolchain
from platform_ctl.spec import load_spec

GOOD = Path(__file__).parent / "specs" / "good" / "minimal_do.yml"


@pytest.fixture
def backend(tmp_path: Path) -> DigitalOceanBackend:
    return DigitalOceanBackend(tmp_path / "state", tmp_path / "env")


def _access(tmp_path: Path) -> Access:
    return Access("platform", tmp_path / "id", "ssh-ed25519 AAAAC3Nza test", tmp_path / "known_hosts")


def test_tfvars_carry_every_host_with_its_group_size_and_volume(backend: DigitalOceanBackend, tmp_path: Path) -> None:
    spec = load_spec(GOOD)
    tfvars = backend.tfvars(spec, _access(tmp_path))
    assert tfvars["environment"] == "minimal"
    assert tfvars["domain"] == "minimal.platform.internal"
    assert sorted(tfvars["hosts"]) == sorted(h.name for h in spec.hosts())
    assert tfvars["hosts"]["minio1"] == {"group": "minio", "size": "s-1vcpu-2gb",
                                         "volume": {"name": "minimal-minio1-data", "size_gb": 20}}
    assert "volume" not in tfvars["hosts"]["trino-coord1"]
    # The base role's user-facing ports, for groups with hosts: Trino HTTPS, and no 443 anywhere.
    assert tfvars["public_ports"] == {"trino_coordinator": [8443]}
    assert "https_groups" not in tfvars
    assert tfvars["group_ports"]["minio"] == [9000, 9001]
    assert tfvars["api_endpoint"] == "https://api.digitalocean.com"
    # The base role's node_exporter rule: every droplet admits 9100 from the monitoring hosts' tag;
    # Docker's metrics too (host_groups [docker] narrows it in nftables, not in the cloud firewall).
    assert tfvars["service_rules"] == [{"name": "node_exporter", "ports": [9100], "source_groups": ["monitoring"]},
                                       {"name": "docker_metrics", "ports": [9323], "source_groups": ["monitoring"]}]
    # Host keys are made once and reused: a second call must not change user data.
    keys = tfvars["host_keys"]["pg1"]
    assert keys["ed25519_public"].startswith("ssh-ed25519 ")
    assert "OPENSSH PRIVATE KEY" in keys["ed25519_private"]
    assert backend.tfvars(spec, _access(tmp_path))["host_keys"] == tfvars["host_keys"]


def test_an_environment_override_of_the_port_matrix_reaches_the_cloud_firewall(tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    (env_dir / "group_vars" / "all").mkdir(parents=True)
    (env_dir / "group_vars" / "all" / "main.yml").write_text("base_firewall_group_ports:\n  minio: [9000]\n")
    assert group_ports(env_dir) == {"minio": [9000]}
    # Without an override of its own, the public table stays the role default.
    assert public_ports(env_dir) == {"trino_coordinator": [8443]}


def test_an_environment_override_of_the_public_ports_reaches_the_cloud_firewall(
        backend: DigitalOceanBackend, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    (env_dir / "group_vars" / "all").mkdir(parents=True)
    (env_dir / "group_vars" / "all" / "main.yml").write_text(
        "base_firewall_public_ports:\n  trino_coordinator: [8443, 8443]\n  monitoring: [3000]\n  apps: [8888]\n")
    assert public_ports(env_dir) == {"apps": [8888], "monitoring": [3000], "trino_coordinator": [8443]}
    # minimal_do has no apps hosts: the cloud firewall gets the groups that have hosts only.
    tfvars = backend.tfvars(load_spec(GOOD), _access(tmp_path))
    assert tfvars["public_ports"] == {"monitoring": [3000], "trino_coordinator": [8443]}


def test_an_environment_override_of_the_service_rules_reaches_the_cloud_firewall(
        backend: DigitalOceanBackend, tmp_path: Path) -> None:
    env_dir = tmp_path / "env"
    (env_dir / "group_vars" / "all").mkdir(parents=True)
    (env_dir / "group_vars" / "all" / "main.yml").write_text(
        "base_firewall_service_rules:\n"
        "  - {name: node_exporter, ports: [9100, 9100], source_groups: [monitoring]}\n"
        "  - {name: pgbouncer, ports: [6432], source_groups: [trino_worker, apps, apps], sources: [10.9.0.0/24]}\n"
        "  - {name: syslog, ports: [514], protocol: udp, source_groups: [monitoring]}\n"
        "  - {name: vpc_only, ports: [7000]}\n"
        "  - {name: cidrs_only, ports: [7001], sources: [10.9.0.0/24]}\n"
        "base_firewall_extra_rules:\n"
        "  - {name: extra, ports: [7002], source_groups: [monitoring]}\n")
    # The override replaces the role's list. TCP rules with source_groups are mirrored (their CIDRs
    # are not); UDP, VPC-only and CIDR-only rules, and the extra rules, are not.
    expected = [{"name": "node_exporter", "ports": [9100], "source_groups": ["monitoring"]},
                {"name": "pgbouncer", "ports": [6432], "source_groups": ["apps", "trino_worker"]}]
    assert service_rules(env_dir) == expected
    # Passed as they are, groups without hosts included: the module drops those.
    assert backend.tfvars(load_spec(GOOD), _access(tmp_path))["service_rules"] == expected


@pytest.mark.parametrize("override", ["base_firewall_service_rules: []\n", "base_firewall_service_rules:\n"])
def test_an_empty_service_rules_override_opens_nothing(tmp_path: Path, override: str) -> None:
    (tmp_path / "group_vars" / "all").mkdir(parents=True)
    (tmp_path / "group_vars" / "all" / "main.yml").write_text(override)
    assert service_rules(tmp_path) == []


def test_preflight_refuses_without_a_token(backend: DigitalOceanBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    monkeypatch.delenv("DIGITALOCEAN_ACCESS_TOKEN", raising=False)
    with pytest.raises(PreflightError, match=r"^DIGITALOCEAN_TOKEN is not set: "):
        backend.preflight(load_spec(GOOD))


@pytest.mark.parametrize(("text", "kind", "message"), [
    ('Error creating droplet: POST http://127.0.0.1:4/v2/droplets: 401 (request "ab") Unable to authenticate you.',
     PreflightError,
     "DigitalOcean refused the API token (401 Unable to authenticate you.) at POST /v2/droplets: set "
     "DIGITALOCEAN_TOKEN to a valid token with write scope"),
    ("Error creating droplet: POST http://127.0.0.1:4/v2/droplets: 422 You specified an invalid size for Droplet "
     "creation.", InfrastructureError,
     "DigitalOcean refused POST /v2/droplets (module.x) (422): You specified an invalid size for Droplet creation.; "
     "fix the value in the environment's platform.yml"),
    ("Error creating Volume: POST http://127.0.0.1:4/v2/volumes: 429 API rate limit exceeded.", RateLimited,
     "DigitalOcean rate limit (429 API rate limit exceeded.) at POST /v2/volumes (module.x): still limited after "
     "4 retries; wait a minute and deploy again"),
])
def test_provider_errors_become_one_clear_message(text: str, kind: type, message: str) -> None:
    error = classify([Diagnostic("error", text, "", "module.x")], "", "tofu apply")
    assert type(error) is kind
    assert error.message == message.replace(" (module.x)", "" if kind is PreflightError else " (module.x)")


def test_other_failures_name_the_command_and_the_diagnostic() -> None:
    error = classify([Diagnostic("warning", "w"), Diagnostic("error", "Invalid value", "for variable x")], "",
                     "tofu plan")
    assert error.message == "tofu plan failed: Invalid value for variable x"


def test_resource_addresses_name_their_host() -> None:
    assert resource_host('module.group["minio"].digitalocean_droplet.this["minio1"]') == "minio1"
    assert resource_host("module.network.digitalocean_vpc.this") == ""


def test_a_rate_limited_apply_backs_off_and_plans_again(tmp_path: Path) -> None:
    slept: list[float] = []
    tofu = Tofu(Toolchain(Path("/bin/false"), "tofu", tmp_path / "rc"), tmp_path, {}, sleep=slept.append)
    attempts = iter([RateLimited("429"), RateLimited("429"), PlanSummary(add=1)])

    def attempt() -> PlanSummary:
        outcome = next(attempts)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert tofu._retrying(attempt, lambda _e: None).add == 1
    assert slept == [1.0, 2.0]


def test_rate_limit_retries_end(tmp_path: Path) -> None:
    slept: list[float] = []
    tofu = Tofu(Toolchain(Path("/bin/false"), "tofu", tmp_path / "rc"), tmp_path, {}, sleep=slept.append)

    def attempt() -> PlanSummary:
        raise RateLimited("429")

    with pytest.raises(RateLimited):
        tofu._retrying(attempt, lambda _e: None)
    assert slept == [1.0, 2.0, 4.0, 8.0]
