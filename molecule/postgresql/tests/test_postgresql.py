"""Verify the postgresql role: live state on pg1, then behaviour from trino1 (a client) and from outside.

pg1 (group postgres) and trino1 (group trino_coordinator, a client of iceberg_catalog only, and in
this scenario the client group of the monitoring login grafana_reader) sit on 10.201.13.0/24, the
scenario's VPC. The test runner itself reaches pg1 from the network's gateway, 10.201.13.1: inside
the VPC (the host firewall lets it through) but no client of any database.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import ssl
import struct
import time
from pathlib import Path

import pytest
import testinfra
import testinfra.utils.ansible_runner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(INVENTORY).get_hosts("postgres")

EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
CA = EPHEMERAL / "pki" / "ca.crt"
PG = "10.201.13.11"
PORT = 5432
DATA_DIR = "/var/lib/postgresql-data/15/main"
UNIT = "postgresql@15-main"
PASSWORDS = {
    "iceberg": "molecule-iceberg-secret-0123456789",
    "dagster": "molecule-dagster-secret-0123456789",
    "grafana_reader": "molecule-grafana-reader-secret-0123456789",
}
CLIENT_CA = "/etc/ssl/certs/platform-molecule-ca.pem"


def _get(name: str) -> testinfra.host.Host:
    return testinfra.get_host(f"ansible://{name}?ansible_inventory={INVENTORY}")


def _sql(host: testinfra.host.Host, query: str, database: str = "postgres") -> str:
    """Run ``query`` as postgres over the local socket; the unaligned, tuples-only output."""
    return host.check_output(f"runuser -u postgres -- psql -d {database} -XAtc {shlex.quote(query)}")


def _journal(host: testinfra.host.Host, unit: str) -> str:
    return host.run(f"journalctl -u {unit} --no-pager -n 50").stdout


def _psql_from_trino(database: str, user: str, password: str, sslmode: str = "verify-full",
                     commands: tuple[str, ...] = ()):
    """psql on trino1 against pg1's private address, running ``commands`` in one session and stopping
    at the first error (by default, who and how the session is); the CommandResult (rc, stdout, stderr)."""
    dsn = f"host={PG} port={PORT} dbname={database} user={user} sslmode={sslmode} sslrootcert={CLIENT_CA}"
    commands = commands or ("SELECT current_user, ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",)
    arguments = " ".join(f"-c {shlex.quote(command)}" for command in commands)
    environment = f"PGPASSWORD={shlex.quote(password)} PGCONNECT_TIMEOUT=10"
    return _get("trino1").run(f"{environment} psql {shlex.quote(dsn)} -XAt -v ON_ERROR_STOP=1 {arguments}")


def _startup(user: str, database: str, tls: bool) -> tuple[str, str]:
    """Open a connection from this machine as PostgreSQL's protocol does (v3 startup, TLS first if
    asked, verified against the CA); the server's first answer: ("E", message) or ("R", auth code)."""
    raw = socket.create_connection((PG, PORT), timeout=10)
    try:
        stream: socket.socket = raw
        if tls:
            raw.sendall(struct.pack("!ii", 8, 80877103))  # SSLRequest
            assert raw.recv(1) == b"S", "the server declined TLS"
            stream = ssl.create_default_context(cafile=str(CA)).wrap_socket(raw, server_hostname=PG)
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
        stream.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        header = b""
        while len(header) < 5:
            header += stream.recv(5 - len(header))
        kind, length = header[:1].decode(), struct.unpack("!i", header[1:])[0]
        body = b""
        while len(body) < length - 4:
            body += stream.recv(length - 4 - len(body))
        if kind == "R":
            return kind, str(struct.unpack("!i", body[:4])[0])
        fields = {chunk[:1]: chunk[1:].decode() for chunk in body.split(b"\0") if chunk}
        return kind, fields.get(b"M", body.decode(errors="replace"))
    finally:
        raw.close()


def _fact(host: testinfra.host.Host) -> dict:
    return json.loads(host.check_output("/etc/ansible/facts.d/platform.fact"))


def _settings_kb(host: testinfra.host.Host, names: list[str]) -> dict[str, float]:
    """pg_settings values in kB (memory) or as numbers, whatever unit the server keeps them in."""
    units = {"8kB": 8, "kB": 1, "MB": 1024, None: 1, "": 1}
    listed = ", ".join(f"'{name}'" for name in names)  # our own constant names, not input
    rows = _sql(host, f"SELECT name, setting, coalesce(unit, '') FROM pg_settings WHERE name IN ({listed})")
    values = {}
    for line in rows.splitlines():
        name, setting, unit = line.split("|")
        values[name] = float(setting) * units[unit]
    return values


# --- On pg1 --------------------------------------------------------------------------------------


def test_cluster_enabled_and_running(host):
    service = host.service(UNIT)
    if not (service.is_enabled and service.is_running):
        pytest.fail(f"{UNIT}: enabled={service.is_enabled} running={service.is_running}\n{_journal(host, UNIT)}")
    assert _sql(host, "SELECT current_setting('data_directory')") == DATA_DIR


def test_data_directory_on_the_xfs_volume_mounted_by_uuid(host):
    mount = host.mount_point("/var/lib/postgresql-data")
    assert mount.exists
    assert mount.filesystem == "xfs"
    assert "noatime" in mount.options
    fstab = [line.split() for line in host.file("/etc/fstab").content_string.splitlines()
             if "/var/lib/postgresql-data" in line]
    assert len(fstab) == 1, fstab
    uuid_ = host.check_output("blkid -s UUID -o value /dev/disk/by-id/scsi-0DO_Volume_molecule-pg1")
    assert fstab[0][0] == f"UUID={uuid_}"
    data = host.file(DATA_DIR)
    assert (data.user, data.group, data.mode) == ("postgres", "postgres", 0o700)
    assert host.file(f"{DATA_DIR}/PG_VERSION").content_string.strip() == "15"
    # No default cluster on the root disk.
    assert not host.file("/var/lib/postgresql/15/main").exists


def test_data_checksums_are_on(host):
    assert _sql(host, "SHOW data_checksums") == "on"


def test_settings_follow_the_container_limits(host):
    fact = _fact(host)
    # The container's 1 GiB, not the machine's memory; its 2 CPUs (or the machine's, if fewer).
    assert (fact["memory_mb"], fact["memory_source"]) == (1024, "cgroup"), fact
    assert fact["vcpus"] == min(2, fact["host_vcpus"]), fact
    mem_kb, cpus = fact["memory_mb"] * 1024, fact["vcpus"]
    volume_mb = int(host.check_output("blockdev --getsize64 /dev/disk/by-id/scsi-0DO_Volume_molecule-pg1")) // 2**20
    shared = mem_kb // 4
    workers = max(8, cpus)
    wal_buffers = shared * 3 // 100
    wal_buffers = 16384 if wal_buffers > 14336 else max(wal_buffers, 32)
    max_wal_mb = min(4096, volume_mb // 4)
    expected = {
        "shared_buffers": shared,
        "effective_cache_size": mem_kb * 3 // 4,
        "maintenance_work_mem": min(mem_kb // 16, 2 * 1024 * 1024),
        "work_mem": max((mem_kb - shared) // ((100 + workers) * 3), 64),
        "wal_buffers": wal_buffers,
        "max_wal_size": max_wal_mb * 1024,
        "min_wal_size": min(1024, max_wal_mb // 4) * 1024,
        "max_connections": 100,
        "max_worker_processes": workers,
        "max_parallel_workers": cpus,
        "max_parallel_workers_per_gather": min(4, cpus // 2),
        "max_parallel_maintenance_workers": min(4, cpus // 2),
        "checkpoint_completion_target": 0.9,
        "random_page_cost": 1.1,
        "effective_io_concurrency": 200,
    }
    actual = _settings_kb(host, list(expected))
    # Memory settings kept in 8 kB pages are rounded to a page.
    wrong = {name: (actual.get(name), want) for name, want in expected.items()
             if abs(actual.get(name, -1) - want) >= 8}
    assert not wrong, f"(actual, expected): {wrong}"
    # And they come from the drop-in, not from somewhere else.
    source = _sql(host, "SELECT DISTINCT sourcefile FROM pg_settings WHERE name IN ('shared_buffers', 'work_mem')")
    assert source == "/etc/postgresql/15/main/conf.d/90-platform.conf"


def test_tls_and_scram_are_configured(host):
    settings = dict(line.split("|") for line in _sql(
        host, "SELECT name, setting FROM pg_settings WHERE name IN "
              "('ssl', 'ssl_min_protocol_version', 'password_encryption', 'listen_addresses')").splitlines())
    assert settings == {"ssl": "on", "ssl_min_protocol_version": "TLSv1.2",
                        "password_encryption": "scram-sha-256", "listen_addresses": f"localhost,{PG}"}
    key = host.file("/etc/postgresql/15/main/tls/server.key")
    assert (key.user, key.mode) == ("postgres", 0o600)
    # Every stored password is a SCRAM verifier.
    assert _sql(host, "SELECT count(*) FROM pg_authid WHERE rolpassword IS NOT NULL "
                      "AND rolpassword NOT LIKE 'SCRAM-SHA-256$%'") == "0"


def test_listens_on_loopback_and_the_private_address_only(host):
    listening = {s for s in host.socket.get_listening_sockets() if s.startswith("tcp://") and s.endswith(":5432")}
    # ::1 is there only where the container has IPv6 on its loopback.
    assert listening - {"tcp://::1:5432"} == {"tcp://127.0.0.1:5432", f"tcp://{PG}:5432"}, listening


def test_roles_have_least_privilege(host):
    # Owners are plain login roles; the exporter reads statistics through pg_monitor only.
    rows = _sql(host, "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
                      "FROM pg_roles WHERE rolname IN ('iceberg', 'dagster', 'grafana', 'prometheus') ORDER BY 1")
    assert rows.splitlines() == [f"{name}|f|f|f|f|f" for name in ("dagster", "grafana", "iceberg", "prometheus")]
    assert _sql(host, "SELECT pg_has_role('prometheus', 'pg_monitor', 'member')") == "t"
    owners = _sql(host, "SELECT datname, pg_get_userbyid(datdba) FROM pg_database "
                        "WHERE datname IN ('iceberg_catalog', 'dagster', 'grafana') ORDER BY 1")
    assert owners.splitlines() == ["dagster|dagster", "grafana|grafana", "iceberg_catalog|iceberg"]
    # PUBLIC lost CONNECT: another owner cannot even reach the database in SQL.
    assert _sql(host, "SELECT has_database_privilege('grafana', 'iceberg_catalog', 'CONNECT')") == "f"


def test_monitoring_login_is_pg_monitor_only(host):
    attributes = _sql(host, "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
                            "rolconfig FROM pg_roles WHERE rolname = 'grafana_reader'")
    assert attributes == "t|f|f|f|f|f|{default_transaction_read_only=on}"
    groups = _sql(host, "SELECT string_agg(g.rolname, ',') FROM pg_auth_members m "
                        "JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles r ON r.oid = m.member "
                        "WHERE r.rolname = 'grafana_reader'")
    assert groups == "pg_monitor"
    # Nothing to write with in the database postgres (PostgreSQL 15's schema public gives PUBLIC no
    # CREATE; the role took TEMPORARY and large-object creation), and no other database to reach.
    privileges = _sql(host, "SELECT has_schema_privilege('grafana_reader', 'public', 'CREATE'), "
                            "has_database_privilege('grafana_reader', 'postgres', 'CREATE'), "
                            "has_database_privilege('grafana_reader', 'postgres', 'TEMPORARY'), "
                            "has_function_privilege('grafana_reader', 'lo_create(oid)', 'EXECUTE'), "
                            "has_function_privilege('grafana_reader', 'lo_from_bytea(oid, bytea)', 'EXECUTE'), "
                            "has_database_privilege('grafana_reader', 'iceberg_catalog', 'CONNECT'), "
                            "has_database_privilege('grafana_reader', 'grafana', 'CONNECT')")
    assert privileges == "f|f|f|f|f|f|f"
    hba = host.file("/etc/postgresql/15/main/pg_hba.conf").content_string
    assert [line.split() for line in hba.splitlines() if "grafana_reader" in line and not line.startswith("#")] \
        == [["hostssl", "postgres", "grafana_reader", "10.201.13.21/32", "scram-sha-256"]]


def test_exporter_runs_as_prometheus(host):
    service = host.service("prometheus-postgres-exporter")
    if not (service.is_enabled and service.is_running):
        pytest.fail(f"exporter: enabled={service.is_enabled} running={service.is_running}\n"
                    f"{_journal(host, 'prometheus-postgres-exporter')}")
    assert host.process.get(comm="prometheus-post").user == "prometheus"


def _backup_info(host: testinfra.host.Host) -> dict:
    return json.loads(host.check_output("runuser -u postgres -- pgbackrest --stanza=main --output=json info"))[0]


def test_posix_repository_on_its_own_volume_encrypted(host):
    # No minio group in this scenario: the repository is a directory on pg1's second volume.
    mount = host.mount_point("/var/lib/pgbackrest")
    assert mount.exists
    assert mount.filesystem == "xfs"
    info = _backup_info(host)
    assert info["status"]["code"] == 0, info["status"]["message"]
    assert info["cipher"] == "aes-256-cbc"
    assert [b["type"] for b in info["backup"]][:1] == ["full"]
    # Encrypted at rest: the manifest is OpenSSL's salted format, not pgBackRest's plain INI text.
    label = info["backup"][0]["label"]
    head = host.check_output(f"head -c 8 /var/lib/pgbackrest/backup/main/{label}/backup.manifest")
    assert head == "Salted__"


def test_secrets_file_is_private(host):
    conf = host.file("/etc/pgbackrest/pgbackrest.conf")
    assert (conf.user, conf.group, conf.mode) == ("root", "postgres", 0o640)
    assert "molecule-pgbackrest-cipher-0123456789" in conf.content_string


def test_pgbackrest_check_passes_and_wal_is_archived(host):
    # check switches the WAL segment and waits until the archive has it.
    before = int(_sql(host, "SELECT archived_count FROM pg_stat_archiver"))
    done = host.run("runuser -u postgres -- pgbackrest --stanza=main check")
    assert done.rc == 0, done.stdout + done.stderr
    assert int(_sql(host, "SELECT archived_count FROM pg_stat_archiver")) > before
    assert _sql(host, "SHOW archive_command") == "pgbackrest --stanza=main archive-push %p"


def test_backup_timers_scheduled_with_retention(host):
    for kind in ("full", "diff"):
        timer = host.service(f"pgbackrest-{kind}.timer")
        assert timer.is_enabled, kind
        assert timer.is_running, kind
    unit = host.check_output("systemctl cat pgbackrest-backup@full.service")
    assert "User=postgres" in unit
    assert "ExecStart=/usr/bin/pgbackrest --stanza=main --type=%i backup" in unit
    conf = host.file("/etc/pgbackrest/pgbackrest.conf").content_string
    assert "repo1-retention-full=2" in conf
    assert "repo1-retention-diff=6" in conf


# --- From trino1 and from outside ----------------------------------------------------------------


def test_client_connects_with_tls_and_the_right_password():
    result = _psql_from_trino("iceberg_catalog", "iceberg", PASSWORDS["iceberg"])
    assert result.rc == 0, result.stderr
    user, tls, version = result.stdout.strip().split("|")
    assert (user, tls) == ("iceberg", "t")
    assert version in {"TLSv1.2", "TLSv1.3"}


def test_connection_without_tls_is_refused():
    result = _psql_from_trino("iceberg_catalog", "iceberg", PASSWORDS["iceberg"], sslmode="disable")
    assert result.rc != 0
    assert "no encryption" in result.stderr, result.stderr
    # The same from this machine, at the protocol level: refused before any password is asked.
    kind, message = _startup("iceberg", "iceberg_catalog", tls=False)
    assert kind == "E", message
    assert 'rejects connection for host "10.201.13.1", user "iceberg", database "iceberg_catalog", no encryption' \
        in message, message


def test_wrong_password_is_refused():
    result = _psql_from_trino("iceberg_catalog", "iceberg", "not-the-password-0123456789")
    assert result.rc != 0
    assert 'password authentication failed for user "iceberg"' in result.stderr, result.stderr


def test_client_of_one_database_is_refused_by_another():
    # trino1 is a client of iceberg_catalog, not of dagster: even the right password does not help.
    result = _psql_from_trino("dagster", "dagster", PASSWORDS["dagster"])
    assert result.rc != 0
    # Refused by the closing catch-all line, before any password is asked.
    assert 'rejects connection for host "10.201.13.21", user "dagster", database "dagster", SSL encryption' \
        in result.stderr, result.stderr


def test_host_outside_the_client_list_is_refused():
    # This machine (10.201.13.1) passes the firewall (inside the VPC) but is no client: PostgreSQL
    # refuses it over TLS before asking for a password. trino1's own TLS startup is asked for SCRAM.
    kind, message = _startup("iceberg", "iceberg_catalog", tls=True)
    assert kind == "E", message
    assert 'rejects connection for host "10.201.13.1", user "iceberg", database "iceberg_catalog", SSL encryption' \
        in message, message


def test_monitoring_login_reads_the_statistics_over_tls():
    who = _psql_from_trino("postgres", "grafana_reader", PASSWORDS["grafana_reader"])
    assert who.rc == 0, who.stderr
    assert who.stdout.strip().split("|")[:2] == ["grafana_reader", "t"]
    # pg_read_all_stats (in pg_monitor): every session with its query text, not only its own.
    result = _psql_from_trino("postgres", "grafana_reader", PASSWORDS["grafana_reader"], commands=(
        "SELECT count(*) > 0 FROM pg_stat_activity WHERE usename IS DISTINCT FROM current_user "
        "AND query IS DISTINCT FROM '<insufficient privilege>'",
        "SELECT count(*) >= 0 FROM pg_stat_replication",
        "SELECT count(*) > 0 FROM pg_ls_waldir()",
        "SELECT count(*) > 0 FROM pg_stat_database",
    ))
    assert result.rc == 0, result.stderr
    assert result.stdout.split() == ["t", "t", "t", "t"], result.stdout


@pytest.mark.parametrize(("statement", "error"), [
    ("CREATE TABLE grafana_reader_probe (i int)", "permission denied for schema public"),
    ("CREATE TEMPORARY TABLE grafana_reader_probe (i int)", "permission denied to create temporary tables"),
    ("SELECT lo_create(0)", "permission denied for function lo_create"),
    ("CREATE SCHEMA grafana_reader_probe", "permission denied for database postgres"),
])
def test_monitoring_login_cannot_write(statement, error):
    # Sessions are read-only by default...
    result = _psql_from_trino("postgres", "grafana_reader", PASSWORDS["grafana_reader"], commands=(statement,))
    assert result.rc != 0
    assert "read-only transaction" in result.stderr or error in result.stderr, result.stderr
    # ...which the login may turn off for itself: the privileges are what refuse the write.
    result = _psql_from_trino("postgres", "grafana_reader", PASSWORDS["grafana_reader"],
                              commands=("SET default_transaction_read_only = off", statement))
    assert result.rc != 0
    assert error in result.stderr, result.stderr


def test_monitoring_login_reaches_no_other_database():
    # trino1 is a client of grafana_reader and of iceberg_catalog, but not of the two together.
    result = _psql_from_trino("iceberg_catalog", "grafana_reader", PASSWORDS["grafana_reader"])
    assert result.rc != 0
    assert 'rejects connection for host "10.201.13.21", user "grafana_reader", database "iceberg_catalog", ' \
        "SSL encryption" in result.stderr, result.stderr


def test_monitoring_login_refused_outside_its_client_groups():
    # This machine (10.201.13.1) is in no client group of grafana_reader: refused over TLS before
    # any password is asked.
    kind, message = _startup("grafana_reader", "postgres", tls=True)
    assert kind == "E", message
    assert 'rejects connection for host "10.201.13.1", user "grafana_reader", database "postgres", SSL encryption' \
        in message, message


def test_exporter_answers_from_the_vpc_with_pg_up():
    # The exporter (0.11) keeps its connection: the first scrape after a server restart reports
    # pg_up 0 ("bad connection") and reconnects, so up to three scrapes, as Prometheus would retry.
    url = f"http://{PG}:9187/metrics"
    probe = f"import urllib.request; print(urllib.request.urlopen({url!r}, timeout=10).read().decode())"
    for _ in range(3):
        metrics = _get("trino1").check_output(f"python3 -c {shlex.quote(probe)}").splitlines()
        if "pg_up 1" in metrics:
            break
        time.sleep(2)
    assert "pg_up 1" in metrics, [line for line in metrics if line.startswith("pg_up")]
    assert "pg_exporter_last_scrape_error 0" in metrics
