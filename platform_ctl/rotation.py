"""Day-2 `rotate-secrets`: new secrets into the vault and onto the hosts, the old ones refused.

``--only minio`` replaces each client's MinIO user (pgBackRest's, Prometheus', Trino's warehouse
user) by a new one with the same policy, in an order that keeps every client working: the new
user is created next to the old one, each client gets the new credentials, and only then is the
old user removed, after which its credentials are proved refused. Access keys alternate between
``<name>-a`` and ``<name>-b``, so the old and the new user exist side by side.

pgBackRest reads its configuration on every run and Prometheus its token file on every scrape:
both take the new credentials online. Trino reads its catalogs' credentials only when it starts,
so its share restarts every Trino node together (one window): that is said
before anything changes, needs confirmation, and the unavailability roles/trino measures is
reported.

``--only postgres`` does the same with PostgreSQL logins: a role has one password, so each user
(the owner of its database) alternates login roles ``<name>_a`` / ``<name>_b`` acting as it
(roles/postgresql, "Rotating the passwords"). The new logins are created next to the old ones, each
client gets its new login (Trino's Iceberg catalog and Grafana restart to read it), the old logins
are dropped from the vault, and the role retires them (no login, no password) and proves from
``pg_authid`` that none of them can log in. The superuser's password (local peer login only) is
replaced with them.

``--only trino`` replaces the internal shared secret Trino's nodes sign their requests to each
other with. A node reads it only when it starts, and nodes with different secrets cannot talk, so
every node restarts together (roles/trino's handler, one play): said before acting, confirmed,
the window measured and reported. Each node then proves it accepts the new secret and refuses
internal requests signed with the old one.

``--only ca`` replaces the environment's CA with a trust overlap (platform_ctl.pki): every client
is made to trust the new CA next to the old, then every certificate is re-issued from the new CA,
then the old CA is trusted no more and its key deleted. Each step applies the TLS tasks of every
role to every host (site.yml, ``TLS_TAGS``). MinIO and Trino read their CAs and certificates
only when they start, so each step restarts each of them, all nodes together: said before acting,
confirmed, each window reported. PostgreSQL reloads; Prometheus reads its CA file again by itself.

``--only passwords`` replaces the passwords and tokens clients present (catalogue ``PASSWORDS``):
Trino's users' (admin, pipelines, analyst, monitoring), Dagster's proxy users' and JupyterLab's
token. Trino accepts the old and the new password of each user side by side (a second password
file, re-read while running) while Prometheus and the apps take the new ones; then it refuses the
old, checked from the coordinator. The proxy passwords and the token have no overlap: they change
when the apps play runs, and Dagster's code server and JupyterLab restart to read theirs.

Without ``--only``, one run rotates every secret but the CA (the CA's trust overlap makes it a run
of its own): MinIO's root credential and its users, the PostgreSQL logins and the superuser's
password, Trino's shared secret and the passwords and tokens. Each host playbook runs once with all of them, so MinIO
restarts once (all nodes together, for the root credential, which also creates the new users),
Trino restarts once (all nodes together, for its new secret, S3 keys and catalog login at once),
and Grafana once: one announced outage instead of four. The old users, logins and secrets are
refused at the end, as in the single rotations.

A run is an operation in ``.platform/<env>/operation.json`` (the access keys old and new, never a
secret; the secrets are in the vault, the old ones under ``vault_minio_previous_users`` until the
end): a run killed in the middle finishes when the same command runs again.
"""

from __future__ import annotations

import functools
import json
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from platform_ctl import catalogue
from platform_ctl.catalogue import (
    DAGSTER_DISRUPTION,
    GRAFANA_DISRUPTION,
    MINIO_CLIENTS,
    PASSWORDS,
    POSTGRES_USERS,
    TLS_TAGS,
    MinioClient,
    PostgresUser,
)
from platform_ctl.engine import (
    OperationFile,
    Step,
    StepsResult,
    pending_operation,
    require_deployed,
    require_no_pending,
    run_operation,
    run_phase,
    verify_step,
)
from platform_ctl.errors import UsageError
from platform_ctl.events import Event, Reporter, discard
from platform_ctl.runner import playbook_groups

if TYPE_CHECKING:
    from platform_ctl.environment import Environment

COMMAND = "rotate-secrets"
#: --only minio-root: MinIO's root credentials.
ROOT = "minio-root"
#: --only postgres: the PostgreSQL logins (and the superuser's password).
POSTGRES = "postgres"
#: --only trino: Trino's internal shared secret.
TRINO = "trino"
#: --only passwords: the passwords and tokens clients present (Trino's users, Dagster's proxy, JupyterLab).
PASSWORDS_ONLY = "passwords"
#: --only ca: the environment's certificate authority, and every certificate it signed.
CA = "ca"
#: What --only accepts, built so far.
COMPONENTS: tuple[str, ...] = ("minio", ROOT, POSTGRES, TRINO, PASSWORDS_ONLY, CA)
#: No --only: every component but the CA, in one run (recorded as this in operation.json).
ALL = "all"
#: What ALL rotates.
ALL_COMPONENTS: tuple[str, ...] = ("minio", ROOT, POSTGRES, TRINO, PASSWORDS_ONLY)
#: Asked for but not built yet: named in the error, so nobody takes silence for a rotation.
NOT_BUILT: tuple[str, ...] = ("grafana",)
#: The vault key holding, during a rotation, the users being replaced (JSON: roles/minio's
#: minio_users_previous).
PREVIOUS_USERS = "vault_minio_previous_users"
#: The same for PostgreSQL logins (JSON: roles/postgresql's postgresql_previous_logins).
PREVIOUS_LOGINS = "vault_postgres_previous_logins"
#: The same for Trino's shared secret (roles/trino's trino_shared_secret_previous).
PREVIOUS_SECRET = "vault_trino_previous_shared_secret"  # noqa: S105 (a vault key)
#: The same for the passwords and tokens (JSON: vault key -> old value; roles/trino's users' `previous`).
PREVIOUS_PASSWORDS = "vault_rotation_previous_passwords"
#: Each component's vault key of what it replaces.
PREVIOUS_KEYS = {"minio": PREVIOUS_USERS, ROOT: PREVIOUS_USERS, POSTGRES: PREVIOUS_LOGINS, TRINO: PREVIOUS_SECRET,
                 PASSWORDS_ONLY: PREVIOUS_PASSWORDS}

#: The inventory group a component's rotation needs hosts in ('': none).
GROUPS = {POSTGRES: "postgres", TRINO: "trino_coordinator", PASSWORDS_ONLY: "trino_coordinator", CA: ""}
#: query.yml's tags writing Trino's password files (and checking the previous passwords refused).
TRINO_PASSWORD_TAGS = ("trino_configure",)


#: metadata.yml's tags that create and retire logins: pg_hba.conf (and its reload), the roles.
POSTGRES_TAGS = ("postgresql_configure", "postgresql_databases")

_ALNUM = string.ascii_letters + string.digits


#: The component each PostgreSQL user is the login of.
_OWNER: dict[str, str] = {u.name: c.name for c in catalogue.COMPONENTS for u in c.postgres_users}


def previous_keys(only: str) -> list[str]:
    """The vault keys holding what a rotation of ``only`` replaces, until it forgets them."""
    return list(dict.fromkeys(PREVIOUS_KEYS[c] for c in (ALL_COMPONENTS if only == ALL else (only,))))


def _random(length: int) -> str:
    """Letters and digits (as platform_ctl.vault generates): safe unquoted in every file they reach."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def next_access_key(user: str, current: str, sep: str = "-") -> str:
    """The other of ``<user>-a`` / ``<user>-b`` (``-a`` after the first, plain ``<user>``).

    PostgreSQL logins take ``_`` (``iceberg_a``): roles/postgresql's names are identifiers.
    """
    return f"{user}{sep}b" if current == f"{user}{sep}a" else f"{user}{sep}a"


@dataclass
class Rotation(OperationFile):
    """A rotation's plan and progress, kept on disk so a rerun resumes it."""

    only: str
    #: MinIO user -> [old access key, new access key]
    access_keys: dict[str, list[str]]
    command: str = COMMAND
    completed: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: PostgreSQL user -> [old login, new login]
    logins: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.only == POSTGRES and self.access_keys and not self.logins:
            # A record written before logins had a field of their own kept them as access keys.
            self.logins, self.access_keys = self.access_keys, {}

    @property
    def option(self) -> str:
        """The command-line option that starts this rotation ('' for all of them)."""
        return "" if self.only == ALL else f" --only {self.only}"

    @property
    def summary(self) -> str:
        users = ", ".join(f"{old} → {new}" for old, new in self.access_keys.values())
        logins = ", ".join(f"{old} → {new}" for old, new in self.logins.values())
        if self.only == ALL:
            return (f"{COMMAND}: every secret but the CA: MinIO's root credentials, MinIO users {users}, "
                    f"PostgreSQL logins {logins}, Trino's internal shared secret, {_PASSWORDS_SAID}")
        said = {ROOT: "MinIO's root credentials", TRINO: "Trino's internal shared secret",
                PASSWORDS_ONLY: _PASSWORDS_SAID, CA: "the environment's certificate authority",
                POSTGRES: f"PostgreSQL logins {logins}"}
        return f"{COMMAND} --only {self.only}: {said.get(self.only, f'MinIO users {users}')}"

    @property
    def refused(self) -> list[str]:
        """What the rotation replaces, each refused at its end: access keys, logins, the secrets it names."""
        named = {ROOT: "MinIO's old root credential", TRINO: "Trino's old shared secret", CA: "the old CA",
                 PASSWORDS_ONLY: "Trino's users' old passwords"}
        components = ALL_COMPONENTS if self.only == ALL else (self.only,)
        return [old for old, _ in (*self.access_keys.values(), *self.logins.values())] \
            + [named[c] for c in components if c in named]

    def resume(self, env: str) -> str:
        return f"platform-ctl {COMMAND} {env}{self.option}"


@dataclass
class RotationResult(StepsResult):
    rotation: Rotation | None = None
    #: What cannot rotate online, said before acting (the CLI asks for confirmation).
    disruptions: list[str] = field(default_factory=list)


#: Why a new root credential interrupts MinIO (roles/minio's handler restarts every node at once).
ROOT_DISRUPTION = ("MinIO reads its root credentials only when it starts, and all its nodes must restart together: "
                   "every S3 request fails until they are back (the restart is measured)")


#: Why a new shared secret interrupts Trino (roles/trino's handler restarts every node at once).
TRINO_ALL_NODES_DISRUPTION = (
    "Trino's nodes sign their requests to each other with the shared secret, read only when "
    "they start, and nodes with different secrets cannot work together: all of them restart together, and no "
    "query is answered until the coordinator is up again with its workers (the restart is measured)")


#: Why a new CA interrupts MinIO and Trino (each step restarts each, all its nodes together).
CA_DISRUPTION = (
    "MinIO and Trino read their CAs and certificates only when they start: each of the three steps (trust the new "
    "CA, re-issue every certificate, stop trusting the old CA) restarts all MinIO nodes together and all Trino "
    "nodes together, and neither answers until it is back (each restart is measured); PostgreSQL only reloads")

#: What a new password or token interrupts: Trino takes its users' online, with the old ones accepted meanwhile.
PASSWORDS_DISRUPTIONS = (
    "Dagster's code server reads the pipelines' Trino password only when it starts: it restarts (its code location "
    "answers again within seconds; a run in progress is lost, the queue and the sensors' cursors are kept)",
    "JupyterLab reads its token and the analyst's Trino password only when it starts: the server restarts (running "
    "kernels stop; notebooks are kept on disk)",
    "Dagster's proxy passwords and JupyterLab's token change at once, with no overlap: a browser or client using "
    "the old ones is refused until given the new ones (platform-ctl credentials)",
)
#: What --only passwords replaces, for its summary.
_PASSWORDS_SAID = "the passwords and tokens (" + ", ".join(s.key.removeprefix("vault_") for s in PASSWORDS) + ")"

#: The rotations that restart a whole component at once, and what that interrupts.
WHOLE_RESTARTS = {ROOT: ROOT_DISRUPTION, TRINO: TRINO_ALL_NODES_DISRUPTION, CA: CA_DISRUPTION}

#: What a rotation of every secret interrupts: each component restarts once, for all its new secrets.
ALL_DISRUPTIONS = (
    "MinIO reads its root credentials only when it starts: all its nodes restart together, once, and every S3 "
    "request fails until they are back (the restart is measured)",
    "Trino reads its shared secret and its Iceberg catalog's S3 credentials and PostgreSQL login only when it "
    "starts: all its nodes restart together, once, and no query is answered until the coordinator is up again "
    "with its workers (the restart is measured)",
    GRAFANA_DISRUPTION,
    DAGSTER_DISRUPTION,
    PASSWORDS_DISRUPTIONS[1],
    PASSWORDS_DISRUPTIONS[2],
)


def disruptions(only: str) -> list[str]:
    """The sentences saying what a rotation of ``only`` interrupts."""
    if only == ALL:
        return list(ALL_DISRUPTIONS)
    if only in WHOLE_RESTARTS:
        return [WHOLE_RESTARTS[only]]
    if only == PASSWORDS_ONLY:
        return list(PASSWORDS_DISRUPTIONS)
    said = [c.disruption for c in (POSTGRES_USERS if only == POSTGRES else MINIO_CLIENTS) if c.disruption]
    return list(dict.fromkeys(said))


def _vault(env: Environment) -> tuple[dict[str, str], str]:
    from platform_ctl.vault import read_vault, vault_password

    password = vault_password(env.name, create=False)
    return read_vault(env.project.vault_path(env.name), password), password


def plan_rotation(env: Environment, only: str | None) -> tuple[Rotation, bool]:
    """The rotation to run: an interrupted one (of the same component), or a new one."""
    pending = pending_operation(env.state_dir)
    if pending is not None:
        if pending.command != COMMAND or (only is not None and pending.data.get("only") != only):
            require_no_pending(env)
        return Rotation.from_record(pending.data), True
    allowed = (f"allowed: {', '.join(COMPONENTS)} (not built yet: {', '.join(NOT_BUILT)}), or no --only for all of "
               f"them but {CA}")
    if only is not None and only not in COMPONENTS:
        raise UsageError(f"--only {only}: not a component {COMMAND} rotates; {allowed}")
    only = only or ALL
    require_deployed(env, "rotate its secrets")
    vault, _ = _vault(env)
    for key in dict.fromkeys(PREVIOUS_KEYS.values()):
        if key in vault:
            raise UsageError(
                f"{env.project.vault_path(env.name)} holds {key} (credentials of a rotation that has no record in "
                f"{Rotation.path(env.state_dir)}): finish or undo that rotation by hand first; nothing was changed")
    if only == CA:
        _require_no_ca_leftovers(env)
    for component in ALL_COMPONENTS if only == ALL else (only,):
        group = GROUPS.get(component, "minio")
        if group and not env.spec.count(group):
            raise UsageError(f"{COMMAND}{'' if only == ALL else f' --only {only}'}: {env.name} has no {group} "
                                   "hosts; nothing was changed")
    logins = {u.name: vault.get(u.login_var, u.name) for u in POSTGRES_USERS}
    logins_next = {name: [old, next_access_key(name, old, "_")] for name, old in logins.items()}
    current = {c.user: vault.get(c.access_key_var, c.user) for c in MINIO_CLIENTS}
    users_next = {user: [old, next_access_key(user, old)] for user, old in current.items()}
    if only == ALL:
        return Rotation(only, users_next, logins=logins_next), False
    if only == POSTGRES:
        return Rotation(only, {}, logins=logins_next), False
    if only in WHOLE_RESTARTS or only == PASSWORDS_ONLY:  # secrets with no user name: in the vault only
        return Rotation(only, {}), False
    return Rotation(only, users_next), False


def _require_no_ca_leftovers(env: Environment) -> None:
    from platform_ctl.pki import NEXT, PREVIOUS

    for name in (NEXT, PREVIOUS):
        if (env.state_dir / "pki" / name).exists():
            raise UsageError(
                f"{env.state_dir / 'pki' / name} exists (a CA of a rotation that has no record in "
                f"{Rotation.path(env.state_dir)}): finish or undo that rotation by hand first; nothing was changed")


class _Runner:
    """The steps of one rotation (any component), bound to the environment."""

    def __init__(self, env: Environment, rotation: Rotation, report: Reporter) -> None:
        self.env, self.rotation, self.report = env, rotation, report

    @property
    def vault_file(self) -> str:
        """The vault's path in the project, as the steps record it."""
        return str(self.env.project.vault_path(self.env.name).relative_to(self.env.project.root))

    def hosts_of(self, phase: str) -> list[str]:
        groups = playbook_groups(phase)
        return [h.name for h in self.env.spec.hosts() if "all" in groups or groups & set(h.groups)]

    def _generate(self, names: dict[str, list[str]], previous_key: str, keys: dict[str, tuple[str, str]],
                  previous: Callable[[str, str, str], dict[str, object]], also: Callable[[], dict[str, str]] = dict,
                  label: str = "new_access_keys") -> dict[str, object]:
        """Each user's new name (``names``: user -> [old, new]) and a new secret into the vault, its old ones
        kept under ``previous_key`` (as ``previous(user, old name, old secret)``) until forgotten; ``also``
        adds other new secrets.

        ``keys`` gives each user's vault keys (name, secret). A user whose new name is in the vault
        already was written by the interrupted run, and gets no second secret.
        """
        from platform_ctl.vault import write_vault

        vault, password = _vault(self.env)
        kept, fresh = [], {}
        for user, (old, new) in names.items():
            name_var, secret_var = keys[user]
            if vault.get(name_var, user) == new:
                continue  # written by the interrupted run
            kept.append(previous(user, old, vault[secret_var]))
            fresh[name_var] = new
            fresh[secret_var] = _random(40)
        if fresh:
            kept = json.loads(vault.get(previous_key, "[]")) + kept
            write_vault(self.env.project.vault_path(self.env.name),
                        {**vault, **fresh, **also(), previous_key: json.dumps(kept)}, password)
        return {"vault": self.vault_file, label: [new for _, new in names.values()]}

    def generate(self) -> dict[str, object]:
        """New users' secrets into the vault; the old users kept there until they are removed."""
        clients = {c.user: c for c in MINIO_CLIENTS}
        return self._generate(
            self.rotation.access_keys, PREVIOUS_USERS,
            {u: (c.access_key_var, c.secret_key_var) for u, c in clients.items()},
            lambda user, old, secret: {"access_key": old, "secret_key": secret, "policies": [clients[user].policy]})

    def generate_root(self) -> dict[str, object]:
        """A new root credential into the vault; the old one kept there until it is proved refused."""
        from platform_ctl.vault import write_vault

        vault, password = _vault(self.env)
        kept = json.loads(vault.get(PREVIOUS_USERS, "[]"))
        if not any(user.get("root") for user in kept):  # else written by the interrupted run
            old = {"access_key": vault["vault_minio_root_user"], "secret_key": vault["vault_minio_root_password"],
                   "root": True}
            fresh = {"vault_minio_root_user": _random(20), "vault_minio_root_password": _random(40),
                     PREVIOUS_USERS: json.dumps([*kept, old])}
            write_vault(self.env.project.vault_path(self.env.name), {**vault, **fresh}, password)
        return {"vault": self.vault_file}

    def generate_secret(self) -> dict[str, object]:
        """A new shared secret for Trino into the vault; the old one kept there until every node refused it."""
        from platform_ctl.vault import write_vault

        vault, password = _vault(self.env)
        if PREVIOUS_SECRET not in vault:  # else written by the interrupted run
            fresh = {"vault_trino_shared_secret": _random(64), PREVIOUS_SECRET: vault["vault_trino_shared_secret"]}
            write_vault(self.env.project.vault_path(self.env.name), {**vault, **fresh}, password)
        return {"vault": self.vault_file}

    def generate_passwords(self) -> dict[str, object]:
        """New passwords and tokens into the vault; the old ones kept there (by vault key) until refused."""
        from platform_ctl.vault import write_vault

        vault, password = _vault(self.env)
        if PREVIOUS_PASSWORDS not in vault:  # else written by the interrupted run
            old = {s.key: vault[s.key] for s in PASSWORDS if s.key in vault}
            fresh = {key: _random(s.length) for s in PASSWORDS if (key := s.key) in old}
            write_vault(self.env.project.vault_path(self.env.name),
                        {**vault, **fresh, PREVIOUS_PASSWORDS: json.dumps(old)}, password)
        return {"vault": self.vault_file, "new": [s.key for s in PASSWORDS]}

    def trino_passwords(self, refused: bool = False) -> dict[str, object]:
        """Trino's password files: the new passwords with the old ones beside them, or (``refused``) the new
        ones alone, each old one checked refused by the coordinator."""
        extravars: dict[str, object] | None = {"trino_users_previous_refused": True} if refused else None
        return run_phase(self.env, "query", "query.yml", self.hosts_of("query"), self.report,
                         tags=TRINO_PASSWORD_TAGS, extravars=extravars)

    def password_steps(self) -> list[Step]:
        trino = ", ".join(self.hosts_of("query"))
        steps = [
            Step("generate", f"{_PASSWORDS_SAID.capitalize()}: new ones into the vault (the old ones kept there "
                 f"as {PREVIOUS_PASSWORDS})", self.generate_passwords),
            Step("add", f"query.yml on {trino} (--tags {','.join(TRINO_PASSWORD_TAGS)}): Trino accepts each "
                 "user's old and new password (online)", self.trino_passwords),
        ]
        phases = {p for secret, own in PASSWORDS.items() for p in (own, *secret.readers)} - {"query"}
        for phase in (p for p in catalogue.PHASES if p in phases and self.hosts_of(p)):
            hosts = self.hosts_of(phase)
            steps.append(Step(f"give-{phase}", f"{phase}.yml on {', '.join(hosts)}: the new passwords and tokens "
                              f"of {phase}'s clients", functools.partial(
                                  run_phase, self.env, phase, f"{phase}.yml", hosts, self.report)))
        return [*steps, *self._refuse_password_steps()]

    def _refuse_password_steps(self) -> list[Step]:
        trino = ", ".join(self.hosts_of("query"))
        return [
            Step("refuse-passwords", f"query.yml on {trino} (--tags {','.join(TRINO_PASSWORD_TAGS)}): Trino "
                 "accepts the new passwords only; each old one checked refused",
                 functools.partial(self.trino_passwords, True)),
            Step("forget", f"drop the old passwords and tokens from the vault ({PREVIOUS_PASSWORDS})", self.forget),
            Step("verify", "the shipped checks on every host", self.verify),
        ]

    def refuse_root(self) -> dict[str, object]:
        vault, _ = _vault(self.env)
        old = [user["access_key"] for user in json.loads(vault.get(PREVIOUS_USERS, "[]")) if user.get("root")]
        return self.users(old)

    def users(self, removed: list[str] | None = None) -> dict[str, object]:
        extravars: dict[str, object] | None = {"minio_users_removed": removed} if removed else None
        return run_phase(self.env, "storage", "storage.yml", self.hosts_of("storage"), self.report,
                         tags=("minio_objects",), extravars=extravars)

    def forget(self) -> dict[str, object]:
        from platform_ctl.vault import write_vault

        keys = previous_keys(self.rotation.only)
        vault, password = _vault(self.env)
        if any(key in vault for key in keys):
            for key in keys:
                vault.pop(key, None)
            write_vault(self.env.project.vault_path(self.env.name), vault, password)
        return {"removed_from_vault": keys[0] if len(keys) == 1 else keys}

    def verify(self) -> dict[str, object]:
        return verify_step(self.env, self.report)

    def root_steps(self) -> list[Step]:
        nodes = self.hosts_of("storage")
        return [
            Step("generate", "a new root credential into the vault (the old one kept there)", self.generate_root),
            Step("restart", f"storage.yml on {', '.join(nodes)}: every node restarts together with the new root "
                 "credential", functools.partial(run_phase, self.env, "storage", "storage.yml", nodes, self.report)),
            Step("refuse", "check the old root credential is refused (storage.yml --tags minio_objects)",
                 self.refuse_root),
            Step("forget", f"drop the old root credential from the vault ({PREVIOUS_USERS})", self.forget),
            Step("verify", "the shipped checks on every host", self.verify),
        ]

    def trino_steps(self) -> list[Step]:
        nodes = self.hosts_of("query")
        return [
            Step("generate", "a new shared secret for Trino into the vault (the old one kept there as "
                 f"{PREVIOUS_SECRET})", self.generate_secret),
            Step("restart", f"query.yml on {', '.join(nodes)}: every node restarts together with the new secret, "
                 "then each is checked to accept it and to refuse internal requests signed with the old one",
                 functools.partial(run_phase, self.env, "query", "query.yml", nodes, self.report)),
            Step("forget", f"drop the old shared secret from the vault ({PREVIOUS_SECRET})", self.forget),
            Step("verify", "the shipped checks on every host", self.verify),
        ]

    def tls(self) -> dict[str, object]:
        return run_phase(self.env, "tls", "site.yml", [h.name for h in self.env.spec.hosts()], self.report,
                         tags=TLS_TAGS)

    def new_ca(self) -> dict[str, object]:
        from platform_ctl.pki import add_next_ca, ensure_ca, trusted_subjects

        add_next_ca(self.env.state_dir, self.env.name)
        return {"trusted": trusted_subjects(ensure_ca(self.env.state_dir, self.env.name))}

    def switch_ca(self) -> dict[str, object]:
        from platform_ctl.pki import switch_ca

        switch_ca(self.env.state_dir)
        return {}

    def untrust(self) -> dict[str, object]:
        from platform_ctl.pki import drop_previous_ca

        drop_previous_ca(self.env.state_dir, self.env.name)
        return self.tls()

    def forget_ca(self) -> dict[str, object]:
        from platform_ctl.pki import PREVIOUS, forget_previous_ca

        forget_previous_ca(self.env.state_dir)
        return {"removed": str(self.env.state_dir / "pki" / PREVIOUS)}

    def ca_steps(self) -> list[Step]:
        tagged = f"site.yml --tags {','.join(TLS_TAGS)} on every host"
        return [
            Step("generate", "a new CA in pki/next/, trusted next to the current one (pki/trusted.crt)", self.new_ca),
            Step("trust", f"{tagged}: every client trusts the old and the new CA (MinIO and Trino restart, "
                 "all nodes together)", self.tls),
            Step("switch", "the new CA signs from now on (the old one kept in pki/previous/, still trusted)",
                 self.switch_ca),
            Step("reissue", f"{tagged}: every certificate re-issued from the new CA (MinIO and Trino restart, all "
                 "nodes together; PostgreSQL reloads)", self.tls),
            Step("untrust", f"{tagged}: every client trusts the new CA only (MinIO and Trino restart, all nodes "
                 "together)", self.untrust),
            Step("forget", "delete the old CA's key and certificate from the controller (pki/previous/)",
                 self.forget_ca),
            Step("verify", "the shipped checks on every host", self.verify),
        ]

    def generate_logins(self) -> dict[str, object]:
        """New logins and passwords into the vault, the old ones kept there; a new superuser password."""
        return self._generate(
            self.rotation.logins, PREVIOUS_LOGINS, {u.name: (u.login_var, u.password_var) for u in POSTGRES_USERS},
            lambda user, old, secret: {"login": old, "password": secret, "of": user},
            also=lambda: {"vault_postgres_superuser_password": _random(40)}, label="new_logins")

    def logins(self) -> dict[str, object]:
        return run_phase(self.env, "metadata", "metadata.yml", self.hosts_of("metadata"), self.report,
                         tags=POSTGRES_TAGS)

    def postgres_steps(self) -> list[Step]:
        logins = self.rotation.logins
        new = ", ".join(n for _, n in logins.values())
        old = ", ".join(o for o, _ in logins.values())
        db = ", ".join(self.hosts_of("metadata"))
        steps = [
            Step("generate", f"new logins {new} and their passwords into the vault (the old ones kept there), "
                 "a new superuser password", self.generate_logins),
            Step("add", f"metadata.yml on {db} (--tags {','.join(POSTGRES_TAGS)}): create {new} next to the old "
                 "logins, pg_hba.conf admits both", self.logins),
        ]
        phases: dict[tuple[str, tuple[str, ...]], list[PostgresUser]] = {}
        for user in POSTGRES_USERS:
            if user.phase and self.hosts_of(user.phase):
                phases.setdefault((user.phase, user.tags), []).append(user)
        for (phase, tags), users in phases.items():
            hosts = self.hosts_of(phase)
            restarts = ", ".join(dict.fromkeys(_OWNER[u.name].capitalize() for u in users))
            tagged = f" (--tags {','.join(tags)})" if tags else ""
            steps.append(Step(
                "give-" + "-".join(u.name for u in users),
                f"{phase}.yml on {', '.join(hosts)}{tagged}: "
                + ", ".join(f"{logins[u.name][1]} replaces {logins[u.name][0]}" for u in users)
                + f" (restarts {restarts})",
                functools.partial(run_phase, self.env, phase, f"{phase}.yml", hosts, self.report, tags=tags)))
        steps += [
            Step("forget", f"drop the old logins' passwords from the vault ({PREVIOUS_LOGINS})", self.forget),
            Step("retire", f"metadata.yml on {db}: retire {old} (no login, no password, sessions ended) and check "
                 "in pg_authid that none of them can log in", self.logins),
            Step("verify", "the shipped checks on every host", self.verify),
        ]
        return steps

    def refuse_all(self) -> dict[str, object]:
        """Remove the old MinIO users and prove them refused, and the old root credential with them."""
        vault, _ = _vault(self.env)
        return self.users([user["access_key"] for user in json.loads(vault.get(PREVIOUS_USERS, "[]"))])

    def generate_all(self) -> dict[str, object]:
        """Every new secret into the vault, each old one kept there until refused."""
        return {**self.generate_root(), **self.generate(), **self.generate_logins(), **self.generate_secret(),
                **self.generate_passwords()}

    def all_steps(self) -> list[Step]:
        """Every rotation but the CA's in one run: each host playbook once, so each component restarts once."""
        users, logins = self.rotation.access_keys, self.rotation.logins
        minio, db = self.hosts_of("storage"), self.hosts_of("metadata")
        steps = [
            Step("generate", "a new MinIO root credential, new secret keys for MinIO users "
                 f"{', '.join(n for _, n in users.values())}, new PostgreSQL logins "
                 f"{', '.join(n for _, n in logins.values())} and a new superuser password, a new Trino shared "
                 f"secret, {_PASSWORDS_SAID}, into the vault (the old ones kept there)", self.generate_all),
            Step("storage", f"storage.yml on {', '.join(minio)}: every node restarts together, once, with the new "
                 "root credential; the new users are created next to the old ones",
                 functools.partial(run_phase, self.env, "storage", "storage.yml", minio, self.report)),
            Step("metadata", f"metadata.yml on {', '.join(db)}: the new logins next to the old ones (pg_hba.conf "
                 f"admits both), pgBackRest's MinIO user {users['pgbackrest'][1]}",
                 functools.partial(run_phase, self.env, "metadata", "metadata.yml", db, self.report)),
        ]
        # Trino before its clients: it accepts its users' old and new passwords until the end.
        for phase, what in (("query", f"Trino's new shared secret, MinIO user {users['warehouse'][1]} and login "
                             f"{logins['iceberg'][1]}: every node restarts together, once, then each is checked to "
                             "refuse internal requests signed with the old secret; its users' old and new passwords "
                             "both accepted"),
                            ("monitoring", f"Prometheus' MinIO user {users['prometheus'][1]} and Trino password, "
                             f"Grafana's logins {logins['grafana'][1]} and {logins['grafana_reader'][1]} (Grafana "
                             "restarts)"),
                            ("apps", f"Dagster's login {logins['dagster'][1]}, MinIO user {users['landing'][1]}, Trino "
                             f"and proxy passwords, JupyterLab's MinIO user {users['jupyter'][1]}, Trino password "
                             "and token (their services restart)")):
            hosts = self.hosts_of(phase)
            if hosts:
                steps.append(Step(phase, f"{phase}.yml on {', '.join(hosts)}: {what}",
                                  functools.partial(run_phase, self.env, phase, f"{phase}.yml", hosts, self.report)))
        steps += [
            Step("remove", f"remove MinIO users {', '.join(o for o, _ in users.values())} and check their credentials "
                 "and the old root credential are refused", self.refuse_all),
            *self._refuse_password_steps()[:1],
            Step("forget", f"drop the old secrets from the vault ({', '.join(previous_keys(ALL))})", self.forget),
            Step("retire", f"metadata.yml on {', '.join(db)}: retire {', '.join(o for o, _ in logins.values())} (no "
                 "login, no password, sessions ended) and check in pg_authid that none of them can log in",
                 self.logins),
            Step("verify", "the shipped checks on every host", self.verify),
        ]
        return steps

    def steps(self) -> list[Step]:
        planned = {ALL: self.all_steps, POSTGRES: self.postgres_steps, ROOT: self.root_steps, TRINO: self.trino_steps,
                   PASSWORDS_ONLY: self.password_steps, CA: self.ca_steps}
        return planned.get(self.rotation.only, self.minio_steps)()

    def minio_steps(self) -> list[Step]:
        keys = self.rotation.access_keys
        new = ", ".join(n for _, n in keys.values())
        old = [o for o, _ in keys.values()]
        steps = [
            Step("generate", f"new secret keys for MinIO users {new} into the vault (the old users kept there)",
                 self.generate),
            Step("add", f"create {new} next to the old users (storage.yml --tags minio_objects)", self.users),
        ]
        # One run of a phase gives every client of it its new user (the apps phase: JupyterLab's and Dagster's).
        phases: dict[str, list[MinioClient]] = {}
        for client in MINIO_CLIENTS:
            if self.hosts_of(client.phase):  # no client host: the user changes in MinIO only
                phases.setdefault(client.phase, []).append(client)
        for phase, clients in phases.items():
            hosts = self.hosts_of(phase)
            restarts = ", ".join(dict.fromkeys(c.restarts for c in clients if c.restarts))
            steps.append(Step("give-" + "-".join(c.user for c in clients), f"{phase}.yml on {', '.join(hosts)}: "
                              + ", ".join(f"{keys[c.user][1]} replaces {keys[c.user][0]}" for c in clients)
                              + (f" (restarts {restarts})" if restarts else ""),
                              functools.partial(run_phase, self.env, phase, f"{phase}.yml", hosts, self.report)))
        steps += [
            Step("remove", f"remove MinIO users {', '.join(old)} and check their credentials are refused",
                 functools.partial(self.users, old)),
            Step("forget", f"drop the old users' secrets from the vault ({PREVIOUS_USERS})", self.forget),
            Step("verify", "the shipped checks on every host", self.verify),
        ]
        return steps


def rotate(env: Environment, only: str | None, report: Reporter = discard, check: bool = False) -> RotationResult:
    """Run (or with ``check``, only plan) ``rotate-secrets --only ONLY``; every rotation but the CA's when
    ``only`` is None and none is unfinished."""
    rotation, resumed = plan_rotation(env, only)
    if resumed:
        report(Event("message", phase="plan", message=f"resuming the interrupted `{rotation.summary}` from "
                     f"{rotation.started} (done: {', '.join(rotation.completed) or 'nothing'})"))
    steps = _Runner(env, rotation, report).steps()
    result = RotationResult(resumed, plan=[(s.name, s.what) for s in steps], rotation=rotation,
                            disruptions=disruptions(rotation.only))
    if check:
        result.check_only = True
        return result
    if not resumed:
        rotation.save(env.state_dir)
    run_operation(env, COMMAND, steps, rotation, result, report, only=rotation.only, access_keys=rotation.access_keys,
                  logins=rotation.logins, resumed=resumed)
    return result
