"""Guard tests: the component catalogue (platform_ctl/catalogue.py) holds against the roles, the
playbooks and the Molecule scenarios.

Each rule is a function from records to problems, so a test can hand it a deliberately broken
record and see it caught (the second half of this file): a record that forgets something fails
here, not in production (a MinIO client missing from the rotation table never gets new keys; a TLS
role missing from the CA rotation's tags keeps a certificate of the old CA).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from platform_ctl import catalogue
from platform_ctl.catalogue import COMPONENTS, Component, MinioClient, PostgresUser, Restart, Secret
from platform_ctl.paths import COLLECTION_ROOT
from tests.scenarios import roles_converged

ROLES = COLLECTION_ROOT / "roles"
PLAYBOOKS = COLLECTION_ROOT / "ansible" / "playbooks"
#: Vault keys a rotation writes and removes again (roles read them with a default): not secrets the
#: catalogue generates.
ROTATION_STATE = re.compile(r"^vault_(minio_\w+_access_key|postgres_\w+_login|\w+_previous_\w+)$")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _tasks(items: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for item in items or ():
        if isinstance(item, dict):
            yield item
            for key in ("block", "rescue", "always"):
                yield from _tasks(item.get(key, ()))


def _tags(task: dict[str, Any]) -> set[str]:
    tags = task.get("tags", [])
    return {tags} if isinstance(tags, str) else set(tags)


def role_tags(role: str) -> set[str]:
    """Every tag on a task of the role."""
    return {t for path in (ROLES / role / "tasks").glob("*.yml") for task in _tasks(_yaml(path)) for t in _tags(task)}


def import_tags(role: str) -> dict[str, set[str]]:
    """tasks/main.yml's imports: task file -> the tags of its import."""
    imports: dict[str, set[str]] = {}
    for task in _tasks(_yaml(ROLES / role / "tasks" / "main.yml")):
        target = task.get("ansible.builtin.import_tasks") or task.get("ansible.builtin.include_tasks")
        if target:
            imports.setdefault(str(target), set()).update(_tags(task))
    return imports


def role_text(role: str, *parts: str) -> str:
    return "\n".join(p.read_text(encoding="utf-8") for part in parts for p in sorted((ROLES / role / part).rglob("*"))
                     if p.is_file())


def playbook_roles(phase: str) -> dict[str, set[str]]:
    """A phase playbook's roles -> the host patterns of the plays applying them."""
    roles: dict[str, set[str]] = {}
    for play in _yaml(PLAYBOOKS / f"{phase}.yml"):
        hosts = {h.strip() for h in re.split(r"[,:]", str(play.get("hosts", "")))}
        for role in play.get("roles", ()):
            roles.setdefault(role["role"] if isinstance(role, dict) else role, set()).update(hosts)
    return roles


# -- the rules -------------------------------------------------------------------------------------
def phase_problems(components: Iterable[Component]) -> list[str]:
    """A built component's role is played in its phase's playbook, on its groups; every role a phase
    playbook plays is a component's."""
    problems, components = [], list(components)
    for c in components:
        if c.phase not in catalogue.PHASES:
            problems.append(f"{c.name}: phase {c.phase!r} is not a deploy phase ({', '.join(catalogue.PHASES)})")
        elif c.role is not None:
            played = playbook_roles(c.phase).get(c.role)
            if played is None:
                problems.append(f"{c.name}: role {c.role} is not played by ansible/playbooks/{c.phase}.yml")
            elif played != set(c.groups):
                problems.append(f"{c.name}: {c.phase}.yml plays {c.role} on {sorted(played)}, the record says "
                                f"{sorted(c.groups)}")
    named = {c.role for c in components}
    for phase in catalogue.PHASES:
        problems += [f"ansible/playbooks/{phase}.yml plays role {r}, which no component record names"
                     for r in playbook_roles(phase) if r not in named]
    return problems


def role_problems(components: Iterable[Component]) -> list[str]:
    """Every role (but the shared ones) is a component's, and every component's role exists and is
    tested by a Molecule scenario."""
    components = list(components)
    converged = roles_converged()
    problems = [f"roles/{r.name} is no component's role: add a record to platform_ctl/catalogue.py"
                for r in sorted(ROLES.iterdir()) if r.is_dir() and r.name not in catalogue.SHARED_ROLES
                and r.name not in {c.role for c in components}]
    for c in components:
        if c.role is None:
            continue
        if not (ROLES / c.role / "tasks" / "main.yml").exists():
            problems.append(f"{c.name}: roles/{c.role}/tasks/main.yml does not exist")
        if c.role not in converged:
            problems.append(f"{c.name}: role {c.role} is converged by no Molecule scenario with tests "
                            "(a play's roles in molecule/<scenario>/converge.yml)")
    return problems


def tls_problems(components: Iterable[Component]) -> list[str]:
    """Every TLS tag is a tag of its role; every role issuing a certificate or trusting the CA
    (``platform_pki``) does so in task files whose import carries one of its TLS tags."""
    problems = []
    for c in components:
        if c.role is None:
            continue
        tags = role_tags(c.role)
        problems += [f"{c.name}: TLS tag {t} is not a tag of roles/{c.role}" for t in c.tls_tags if t not in tags]
        imports = import_tags(c.role)
        for path in sorted((ROLES / c.role / "tasks").glob("*.yml")):
            text = path.read_text(encoding="utf-8")
            if path.name in ("main.yml", "preflight.yml") or not ("tasks_from: certificate" in text
                                                                    or "platform_pki" in text):
                continue
            if not imports.get(path.name, set()) & set(c.tls_tags):
                problems.append(f"{c.name}: roles/{c.role}/tasks/{path.name} issues or trusts certificates, but no "
                                f"TLS tag of the record applies it (its import's tags: "
                                f"{sorted(imports.get(path.name, ()))}): a CA rotation would not reach it")
    return problems


def minio_problems(components: Iterable[Component]) -> list[str]:
    """Every MinIO client is a user of the minio role, with the record's policy; every minio role user
    is a client of a record."""
    defaults = _yaml(ROLES / "minio" / "defaults" / "main.yml")
    users = {re.search(r"vault_minio_(\w+)_access_key", u["access_key"]).group(1): u  # type: ignore[union-attr]
             for u in defaults["minio_users"]}
    clients = [m for c in components for m in c.minio_clients]
    problems = []
    for m in clients:
        user = users.get(m.user)
        if user is None:
            problems.append(f"MinIO client {m.user}: not a user of roles/minio (minio_users), so rotate-secrets "
                            "would rotate nothing")
        elif m.policy not in user["policies"] or m.policy not in defaults["minio_policies"]:
            problems.append(f"MinIO client {m.user}: policy {m.policy} is not its policy in roles/minio "
                            f"({user['policies']})")
        elif user["secret_key"] != "{{ " + m.secret_key_var + " }}":
            problems.append(f"MinIO client {m.user}: roles/minio reads its secret key from {user['secret_key']}")
    problems += [f"roles/minio's user {u} is no component's MinIO client: its keys would never rotate"
                 for u in users if u not in {m.user for m in clients}]
    return problems


def postgres_problems(components: Iterable[Component]) -> list[str]:
    """Every PostgreSQL user of a record is a login of the postgresql role, and the other way round."""
    defaults = _yaml(ROLES / "postgresql" / "defaults" / "main.yml")
    logins = {u["name"] for u in defaults["postgresql_users"] + defaults["postgresql_monitoring_users"]}
    names = {u.name for c in components for u in c.postgres_users}
    return [f"PostgreSQL user {n}: not a login of roles/postgresql" for n in sorted(names - logins)] + \
        [f"roles/postgresql's login {n} is no component's PostgreSQL user: its password would never rotate"
         for n in sorted(logins - names)]


def secret_problems(components: Iterable[Component]) -> list[str]:
    """Every vault key of a record is read by a role; every vault key a role reads is a record's (or the
    state of a rotation)."""
    used = {key for role in ROLES.iterdir() if role.is_dir()
            for key in re.findall(r"\bvault_[a-z_]*[a-z](?![a-z_<])", role_text(role.name, "defaults", "vars", "tasks",
                                                                       "templates"))}
    keys = [k for c in components for k in c.vault_keys]
    problems = [f"vault key {k}: no role reads it" for k in keys if k not in used]
    problems += [f"vault key {k} appears twice in the catalogue" for k in sorted(set(keys)) if keys.count(k) > 1]
    problems += [f"roles read {k}, which no component record declares: a new vault would lack it"
                 for k in sorted(used - set(keys)) if not ROTATION_STATE.match(k)]
    return problems


def membership_problems(components: Iterable[Component]) -> list[str]:
    """Membership and restart measures name tags and stats their role has."""
    problems = []
    for c in components:
        if c.role is None:
            continue
        if c.membership is not None:
            tags = role_tags(c.role)
            problems += [f"{c.name}: membership tag {t} is not a tag of roles/{c.role}"
                         for t in c.membership.tags if t not in tags]
        if c.restart is not None and c.restart.stat not in role_text(c.role, "tasks"):
            problems.append(f"{c.name}: roles/{c.role} sets no stat {c.restart.stat}")
    return problems


def order_problems(components: Iterable[Component]) -> list[str]:
    """Clients that take new credentials online come first in the rotation order."""
    problems = []
    for kind, clients in (("MinIO client", [m for c in components for m in c.minio_clients]),
                          ("PostgreSQL user", [u for c in components for u in c.postgres_users])):
        seen_disruptive = ""
        for client in clients:
            name = client.user if isinstance(client, MinioClient) else client.name
            if client.disruption:
                seen_disruptive = seen_disruptive or name
            elif seen_disruptive:
                problems.append(f"{kind} {name} takes its credentials online but comes after {seen_disruptive}, "
                                "which restarts: move its component up the catalogue")
    return problems


RULES = (phase_problems, role_problems, tls_problems, minio_problems, postgres_problems, secret_problems,
         membership_problems, order_problems)


@pytest.mark.parametrize("rule", RULES, ids=[r.__name__ for r in RULES])
def test_the_catalogue_holds_against_the_roles(rule) -> None:
    assert rule(COMPONENTS) == []


def test_the_derived_tables_cover_every_record() -> None:
    assert {m.user for m in catalogue.MINIO_CLIENTS} == {"jupyter", "landing", "pgbackrest", "prometheus", "warehouse"}
    assert set(catalogue.TLS_TAGS) >= {"minio_tls", "postgresql_tls", "trino_tls"}
    assert set(catalogue.RESTART_SENTENCES) == {"minio", "trino"}
    assert catalogue.membership_readers() == {"metadata": {"postgres": None}, "monitoring": {"monitoring": None},
                                              "storage": {"minio": ("minio",)}}


# -- deliberately broken records are caught --------------------------------------------------------
def _with(name: str, **changes: Any) -> list[Component]:
    return [dataclasses.replace(c, **changes) if c.name == name else c for c in COMPONENTS]


BROKEN = {
    "a TLS role without its TLS tag": (
        tls_problems, _with("postgresql", tls_tags=()), "postgresql: roles/postgresql/tasks/tls.yml issues or trusts"),
    "a TLS tag the role does not have": (
        tls_problems, _with("trino", tls_tags=("trino_tls", "trino_certs")), "TLS tag trino_certs is not a tag"),
    "a MinIO client left out": (
        minio_problems, _with("prometheus", minio_clients=()), "roles/minio's user prometheus is no component's"),
    "a MinIO client that is no user": (
        minio_problems, _with("trino", minio_clients=(MinioClient("lakehouse", "warehouse-rw", "query"),)),
        "MinIO client lakehouse: not a user of roles/minio"),
    "a wrong policy": (
        minio_problems, _with("postgresql", minio_clients=(MinioClient("pgbackrest", "warehouse-rw", "metadata"),)),
        "policy warehouse-rw is not its policy"),
    "a PostgreSQL login left out": (
        postgres_problems, _with("grafana", postgres_users=(PostgresUser("grafana"),)),
        "login grafana_reader is no component's PostgreSQL user"),
    "a vault key no role reads": (
        secret_problems, _with("trino", secrets=(*catalogue.component("trino").secrets, Secret("vault_trino_typo"))),
        "vault key vault_trino_typo: no role reads it"),
    "a vault key left out": (
        secret_problems, _with("grafana", secrets=(Secret("vault_grafana_admin_password", 32),)),
        "roles read vault_grafana_secret_key, which no component record declares"),
    "a role without a record": (
        role_problems, [c for c in COMPONENTS if c.name != "node_exporter"], "roles/node_exporter is no component's"),
    "a record without a Molecule scenario": (
        role_problems, [*COMPONENTS, Component("spark", "spark", "query", ("trino_worker",))],
        "role spark is converged by no Molecule scenario with tests"),
    "a record in the wrong phase": (
        phase_problems, _with("grafana", phase="query"), "grafana: role grafana is not played by"),
    "a restart the role does not measure": (
        membership_problems, _with("postgresql", restart=Restart("platform_postgresql_restart", "")),
        "roles/postgresql sets no stat platform_postgresql_restart"),
    "an online client after one that restarts": (
        order_problems, [catalogue.component("trino"), *(c for c in COMPONENTS if c.name != "trino")],
        "MinIO client pgbackrest takes its credentials online but comes after warehouse"),
}


@pytest.mark.parametrize("case", BROKEN, ids=list(BROKEN))
def test_a_broken_record_is_caught(case: str) -> None:
    rule, components, expected = BROKEN[case]
    problems = rule(components)
    assert any(expected in p for p in problems), problems
