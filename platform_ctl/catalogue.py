"""The component catalogue: one record per component of the platform, and every table derived from it.

A component is what a role deploys (or, with ``role=None``, one the spec may already pin a version
of but no role deploys yet). Its record says everything the rest of platform-ctl needs to know
about it: the inventory groups and deploy phase its play runs in, the versions the spec may pin,
the vault secrets its role reads, the MinIO users and PostgreSQL logins it is a client of (so
``rotate-secrets`` replaces them), the tags that re-issue its certificates (so a CA rotation reaches
it), whether its configuration lists other hosts (so ``scale-out`` reconfigures it), how it
reports a restart it measured, and the services users reach on its hosts (``platform-ctl endpoints``).

Nothing else in the package lists components: vault keys (platform_ctl.vault), the rotation tables
(platform_ctl.rotation), the CA rotation's tags, scaling's membership readers
(platform_ctl.scaling), the restart sentences (platform_ctl.engine) and the spec's version formats
(platform_ctl.spec) are computed here. tests/unit/test_catalogue.py holds the records against the
roles, playbooks and Molecule scenarios, so a record that forgets something fails there, not in
production. CONTRIBUTING.md, "Adding a component", is the path.

The order of :data:`COMPONENTS` is meaningful: it is the order ``rotate-secrets`` hands clients their
new credentials, so components whose clients take them online (pgBackRest, Prometheus) come before
those that restart to read them (Grafana, Trino).

Model: tdp-lib's data-declared service catalogue (``tdp/core/collections/collection_reader.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

#: Deploy's playbook phases, in dependency order; each is ansible/playbooks/<phase>.yml.
PHASES: tuple[str, ...] = ("base", "storage", "metadata", "query", "monitoring", "apps")


@dataclass(frozen=True)
class Secret:
    """A vault key a role reads, and how a new value is made (letters and digits of ``length``, or
    MinIO's single-key KMS format)."""

    key: str
    length: int = 40
    kind: Literal["alnum", "minio_kms"] = "alnum"
    #: A password or token clients present: ``rotate-secrets --only passwords`` replaces it, then runs
    #: these phases (besides its component's) whose roles hand it to a client.
    password: bool = False
    readers: tuple[str, ...] = ()


@dataclass(frozen=True)
class MinioClient:
    """A MinIO user of one client: its policy (roles/minio) and the playbook phase giving it over."""

    user: str
    policy: str
    phase: str
    #: Why the client cannot take new credentials online ('' when it can).
    disruption: str = ""
    #: What restarts when it takes them (rotate-secrets' plan), with a disruption.
    restarts: str = ""

    @property
    def access_key_var(self) -> str:
        return f"vault_minio_{self.user}_access_key"

    @property
    def secret_key_var(self) -> str:
        return f"vault_minio_{self.user}_secret_key"


@dataclass(frozen=True)
class PostgresUser:
    """A PostgreSQL user (roles/postgresql's postgresql_users or _monitoring_users) and who logs in as it."""

    name: str
    #: The playbook giving its clients the new login, with its tags ('' when no deployed host is a client).
    phase: str = ""
    tags: tuple[str, ...] = ()
    disruption: str = ""

    @property
    def login_var(self) -> str:
        return f"vault_postgres_{self.name}_login"

    @property
    def password_var(self) -> str:
        return f"vault_postgres_{self.name}_password"


@dataclass(frozen=True)
class Membership:
    """The component's configuration lists hosts of other groups (pg_hba.conf, scrape targets, MinIO's
    server command line): ``reader``'s hosts re-read ``reads`` (None: every group) when a group grows,
    applying only ``tags`` when none of them is new."""

    reader: str
    reads: tuple[str, ...] | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Restart:
    """A restart the role measures and hands over as the set_stats key ``stat``; ``sentence`` says it
    (formatted with the measure: ``unavailable_s``, ``nodes``)."""

    stat: str
    sentence: str


@dataclass(frozen=True)
class Endpoint:
    """A service users reach (``platform-ctl endpoints``): served by the first host of ``group`` at
    ``scheme://<its address>:<port><path>``.

    ``port_var`` is the role variable that sets the port (``port`` is its default; an environment's
    ``group_vars/all/main.yml`` may override it). ``user`` is a login name, or the vault key holding
    it (``vault_*``), '' when the credential alone identifies (a token). ``credential`` is the vault
    key of its secret, '' when the service has no authentication. ``installed_var``: the role
    variable that, set false in the environment's settings, leaves the service out ('' when none).
    """

    service: str
    group: str
    scheme: Literal["https", "http"]
    port: int
    port_var: str
    description: str
    path: str = ""
    user: str = ""
    credential: str = ""
    installed_var: str = ""


class VersionFormat(NamedTuple):
    pattern: re.Pattern[str]
    #: What is allowed, for the error message.
    form: str


@dataclass(frozen=True)
class Component:
    name: str
    #: roles/<role>; None: not built yet (the spec may pin its version; nothing deploys it).
    role: str | None
    #: The deploy phase (playbook) its role runs in, and the inventory groups of that play.
    phase: str
    groups: tuple[str, ...]
    versions: Mapping[str, VersionFormat] = field(default_factory=dict)
    secrets: tuple[Secret, ...] = ()
    minio_clients: tuple[MinioClient, ...] = ()
    postgres_users: tuple[PostgresUser, ...] = ()
    #: The role's tags a CA rotation applies: they re-issue its certificates and trust, and restart
    #: (or reload) what reads them.
    tls_tags: tuple[str, ...] = ()
    membership: Membership | None = None
    restart: Restart | None = None
    #: The services users reach on its hosts (``platform-ctl endpoints``, ``platform-ctl credentials``).
    endpoints: tuple[Endpoint, ...] = ()

    @property
    def vault_keys(self) -> tuple[str, ...]:
        """Every vault key of the component: its own secrets, its MinIO users' and logins' passwords."""
        return tuple(s.key for s in self.all_secrets)

    @property
    def all_secrets(self) -> tuple[Secret, ...]:
        return (*self.secrets, *(Secret(c.secret_key_var) for c in self.minio_clients),
                *(Secret(u.password_var) for u in self.postgres_users))


def _version(pattern: str, form: str) -> VersionFormat:
    return VersionFormat(re.compile(pattern), form)


_SEMVER = r"^\d+\.\d+\.\d+$"

#: Why Trino restarts when a credential of its Iceberg catalog changes.
TRINO_DISRUPTION = ("Trino reads its Iceberg catalog's {what} only when it starts: its nodes restart together "
                    "(no query is answered until the coordinator is up again with its workers)")
DAGSTER_DISRUPTION = ("Dagster reads its storage's PostgreSQL login only when it starts: its code server, webservers "
                      "and daemon restart (the UI answers again within seconds; a run in progress is lost, the "
                      "queue and the sensors' cursors are kept in PostgreSQL)")
JUPYTER_DISRUPTION = ("JupyterLab's kernels read the warehouse key from the server's environment, set when it starts: "
                      "the server restarts (running kernels stop; notebooks are kept on disk)")
DAGSTER_CODE_DISRUPTION = ("Dagster's code server reads the landing bucket's key only when it starts: it restarts (its "
                           "code location answers again within seconds; a run in progress is lost, the sensors' "
                           "cursors are kept in PostgreSQL)")
GRAFANA_DISRUPTION = ("Grafana reads its database's and its PostgreSQL data source's logins only when it starts: "
                      "it restarts (its UI and API answer again within seconds)")

COMPONENTS: tuple[Component, ...] = (
    Component(
        "base", "base", "base", ("all",),
        # /etc/hosts and the nftables allow-lists list every host.
        membership=Membership("all", None, ("base_hosts", "base_firewall")),
    ),
    Component(
        "node_exporter", "node_exporter", "base", ("all",),
        versions={"node_exporter": _version(_SEMVER, "a version such as 1.12.1")},
    ),
    Component(
        "minio", "minio", "storage", ("minio",),
        # The controller builds MinIO from the Go module proxy, which serves no release tags.
        versions={"minio": _version(r"^v\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$", "a Go module version of "
                                    "github.com/minio/minio such as v0.0.0-20260212201848-7aac2a2c5b7c")},
        # MinIO access keys: at least 3 characters; secret keys 8 to 40.
        secrets=(Secret("vault_minio_root_user", 20), Secret("vault_minio_root_password", 40),
                 Secret("vault_minio_kms_secret_key", kind="minio_kms")),
        tls_tags=("minio_tls", "minio_configure"),
        # Every node's server command line lists every MinIO host: a new pool restarts the cluster.
        membership=Membership("minio", ("minio",)),
        # Both listen on every address, TLS from --certs-dir (templates/minio.env.j2); the console
        # logs in with the same root credentials.
        endpoints=(Endpoint("minio", "minio", "https", 9000, "minio_port", "MinIO S3 API (root credentials)",
                            user="vault_minio_root_user", credential="vault_minio_root_password"),
                   Endpoint("minio-console", "minio", "https", 9001, "minio_console_port",
                            "MinIO console (root credentials)", path="/",
                            user="vault_minio_root_user", credential="vault_minio_root_password")),
        restart=Restart("platform_minio_restart",
                        "MinIO unavailable (no write quorum by its health check) for {unavailable_s:.1f} s while its "
                        "{nodes} nodes restarted together; writes through a node can fail up to 15 s longer, until "
                        "it reconnects peers' drives it found down (MinIO retries every 15 s)"),
    ),
    Component(
        "postgresql", "postgresql", "metadata", ("postgres",),
        versions={"postgresql": _version(r"^\d{2}$", "a PostgreSQL major version such as 15")},
        # pgBackRest's repository passphrase is long: it is never typed.
        secrets=(Secret("vault_postgres_superuser_password"), Secret("vault_pgbackrest_cipher_pass", 64)),
        minio_clients=(MinioClient("pgbackrest", "pgbackrest-rw", "metadata"),),
        tls_tags=("postgresql_tls",),
        # pg_hba.conf admits client groups by host.
        membership=Membership("postgres", None, ("postgresql_configure",)),
    ),
    Component(
        "prometheus", "prometheus", "monitoring", ("monitoring",),
        versions={"prometheus": _version(r"^3\.\d+\.\d+$", "a Prometheus 3 version such as 3.16.0"),
                  "alertmanager": _version(_SEMVER, "a version such as 0.35.0")},
        # Its MinIO user's secret key signs the bearer token Prometheus scrapes MinIO with.
        minio_clients=(MinioClient("prometheus", "prometheus-metrics", "monitoring"),),
        tls_tags=("prometheus_configure",),
        # Prometheus scrapes every host.
        membership=Membership("monitoring", None, ("prometheus_configure", "prometheus_service")),
        # Plain HTTP without authentication, on the private address only (roles/prometheus defaults).
        endpoints=(Endpoint("prometheus", "monitoring", "http", 9090, "prometheus_port",
                            "Prometheus (no authentication)", path="/"),
                   Endpoint("alertmanager", "monitoring", "http", 9093, "prometheus_alertmanager_port",
                            "Alertmanager (no authentication)", path="/")),
    ),
    Component(
        "grafana", "grafana", "monitoring", ("monitoring",),
        versions={"grafana": _version(_SEMVER, "a version such as 12.1.0")},
        # secret_key encrypts what Grafana stores (data-source passwords); fixed once used.
        secrets=(Secret("vault_grafana_admin_password", 32), Secret("vault_grafana_secret_key", 40)),
        postgres_users=(PostgresUser("grafana", "monitoring", ("grafana",), GRAFANA_DISRUPTION),
                        PostgresUser("grafana_reader", "monitoring", ("grafana",), GRAFANA_DISRUPTION)),
        tls_tags=("grafana_configure",),
        # grafana.ini: protocol http on the private address; basic auth and the login form.
        endpoints=(Endpoint("grafana", "monitoring", "http", 3000, "grafana_port", "Grafana dashboards",
                            path="/", user="admin", credential="vault_grafana_admin_password",
                            installed_var="grafana_install"),),
    ),
    Component(
        "trino", "trino", "query", ("trino_coordinator", "trino_worker"),
        versions={"trino": _version(r"^\d{3,}$", "a Trino release number such as 476")},
        # internal-communication.shared-secret: 64+ characters of entropy recommended.
        # The users' passwords (trino_users; what each may do is roles/trino's rules.json): admin,
        # pipelines (dbt's writer), analyst (JupyterLab), monitoring (Prometheus' scrapes).
        secrets=(Secret("vault_trino_shared_secret", 86), Secret("vault_trino_admin_password", 32, password=True),
                 Secret("vault_trino_pipelines_password", 32, password=True, readers=("apps",)),
                 Secret("vault_trino_analyst_password", 32, password=True, readers=("apps",)),
                 Secret("vault_trino_monitoring_password", 32, password=True, readers=("monitoring",))),
        minio_clients=(MinioClient("warehouse", "warehouse-rw", "query",
                                   TRINO_DISRUPTION.format(what="S3 credentials"), "Trino"),),
        postgres_users=(PostgresUser("iceberg", "query", (), TRINO_DISRUPTION.format(what="PostgreSQL login")),),
        tls_tags=("trino_tls", "trino_configure"),
        # HTTPS only; the coordinator checks passwords (trino_users), its web UI is at /ui/.
        endpoints=(Endpoint("trino", "trino_coordinator", "https", 8443, "trino_https_port",
                            "Trino SQL (JDBC, CLI, web UI at /ui/)", user="admin",
                            credential="vault_trino_admin_password"),
                   Endpoint("trino-analyst", "trino_coordinator", "https", 8443, "trino_https_port",
                            "Trino SQL as an analyst (reads the marts, writes the sandbox schema)", user="analyst",
                            credential="vault_trino_analyst_password")),
        restart=Restart("platform_trino_restart",
                        "Trino answered no query for {unavailable_s:.1f} s while it restarted (from its coordinator's "
                        "stop until the coordinator was up again with its workers listed)"),
    ),
    Component("docker", "docker", "apps", ("docker",)),
    Component(
        "jupyterlab", "jupyterlab", "apps", ("apps",),
        # JupyterLab's version is its lock's (platform_ctl/locks/jupyter.lock): the spec may name it only.
        versions={"jupyterlab": _version(_SEMVER, "a version such as 4.6.6")},
        # Every request to the server needs the token (letters and digits: it is also a URL parameter).
        secrets=(Secret("vault_jupyterlab_token", 48, password=True),),
        # The kernels' read-only access to the warehouse bucket (AWS_* in their environment).
        minio_clients=(MinioClient("jupyter", "warehouse-read", "apps", JUPYTER_DISRUPTION, "JupyterLab"),),
        tls_tags=("jupyterlab_tls",),
        endpoints=(Endpoint("jupyterlab", "apps", "https", 8888, "jupyterlab_port",
                            "JupyterLab (token: `Authorization: token …` or ?token=)", path="/lab",
                            credential="vault_jupyterlab_token"),),
    ),
    Component(
        "dagster", "dagster", "apps", ("apps",),
        # Dagster's version is its lock's (platform_ctl/locks/dagster.lock): the spec may name it only.
        versions={"dagster": _version(_SEMVER, "a version such as 1.13.27")},
        # The reverse proxy's two users (HTTP basic authentication): the operator launches runs, the
        # viewer reaches a read-only webserver.
        secrets=(Secret("vault_dagster_operator_password", 32, password=True),
                 Secret("vault_dagster_viewer_password", 32, password=True)),
        # Run, event-log and schedule storage.
        postgres_users=(PostgresUser("dagster", "apps", ("dagster",), DAGSTER_DISRUPTION),),
        # The example pipelines' reader of the landing bucket (its sensor and loader).
        minio_clients=(MinioClient("landing", "landing-read", "apps", DAGSTER_CODE_DISRUPTION,
                                   "Dagster's code server"),),
        tls_tags=("dagster_tls",),
        endpoints=(Endpoint("dagster", "apps", "https", 3070, "dagster_port",
                            "Dagster UI and GraphQL API (operator: launches runs)", path="/", user="operator",
                            credential="vault_dagster_operator_password"),
                   Endpoint("dagster-viewer", "apps", "https", 3070, "dagster_port",
                            "Dagster UI, read-only (viewer)", path="/", user="viewer",
                            credential="vault_dagster_viewer_password")),
    ),
)

#: Roles of shared task files (include_role with tasks_from), no component's: never applied on their own.
SHARED_ROLES: tuple[str, ...] = ("common",)

_BY_NAME = {c.name: c for c in COMPONENTS}


def component(name: str) -> Component:
    return _BY_NAME[name]


def built() -> tuple[Component, ...]:
    """The components a role deploys."""
    return tuple(c for c in COMPONENTS if c.role is not None)


# -- derived tables --------------------------------------------------------------------------------
#: Every vault secret, in catalogue order.
SECRETS: tuple[Secret, ...] = tuple(s for c in COMPONENTS for s in c.all_secrets)
#: The passwords and tokens clients present (rotate-secrets --only passwords), and the phase of each.
PASSWORDS: dict[Secret, str] = {s: c.phase for c in COMPONENTS for s in c.secrets if s.password}
#: The MinIO clients in the order they get their new user: the online ones first.
MINIO_CLIENTS: tuple[MinioClient, ...] = tuple(m for c in COMPONENTS for m in c.minio_clients)
#: The PostgreSQL users in the order their clients get the new login.
POSTGRES_USERS: tuple[PostgresUser, ...] = tuple(u for c in COMPONENTS for u in c.postgres_users)
#: Every role's tags a CA rotation applies (site.yml).
TLS_TAGS: tuple[str, ...] = tuple(t for c in COMPONENTS for t in c.tls_tags)
#: Components whose version the spec may pin, and the form each version takes.
VERSION_FORMATS: dict[str, VersionFormat] = {n: f for c in COMPONENTS for n, f in c.versions.items()}
#: Restart measures: set_stats key -> component, and how each is said.
RESTART_STATS: dict[str, str] = {c.restart.stat: c.name for c in COMPONENTS if c.restart}
RESTART_SENTENCES: dict[str, str] = {c.name: c.restart.sentence for c in COMPONENTS if c.restart}
#: The services users reach, by service name, in catalogue order.
ENDPOINTS: dict[str, Endpoint] = {e.service: e for c in COMPONENTS for e in c.endpoints}


def membership_readers() -> dict[str, dict[str, tuple[str, ...] | None]]:
    """Playbook phase -> {the group whose hosts read membership: the groups they read (None: all)}, base's
    own (every host reads every host) excepted: scale-out runs it as a step of its own."""
    readers: dict[str, dict[str, tuple[str, ...] | None]] = {}
    for c in COMPONENTS:
        if c.membership is not None and c.phase != "base":
            readers.setdefault(c.phase, {})[c.membership.reader] = c.membership.reads
    return readers


def membership_tags() -> dict[str, tuple[str, ...]]:
    """Playbook phase -> the tags that reconfigure only what reads membership (phases with such tags)."""
    return {c.phase: c.membership.tags for c in COMPONENTS
            if c.membership is not None and c.membership.tags and c.phase != "base"}


def base_membership_tags() -> tuple[str, ...]:
    """The base concerns built from the inventory's host list (re-applied on every other host)."""
    membership = component("base").membership
    return membership.tags if membership is not None else ()
