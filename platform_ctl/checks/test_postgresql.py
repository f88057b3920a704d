"""What the postgresql role promises on the PostgreSQL host, checked on the host over SSH."""

from __future__ import annotations

testinfra_hosts = ["ansible://postgres"]

UNIT = "postgresql@15-main"


def _sql(host, query: str) -> str:
    return host.check_output(f"sudo -u postgres psql -XAtq -c \"{query}\"")


def test_postgresql_runs_on_its_xfs_volume(host):
    service = host.service(UNIT)
    assert service.is_enabled
    assert service.is_running
    mount = host.mount_point("/var/lib/postgresql-data")
    assert mount.exists
    assert mount.filesystem == "xfs"
    assert _sql(host, "SELECT current_setting('data_directory')").startswith("/var/lib/postgresql-data/")


def test_data_checksums_tls_and_scram(host):
    assert _sql(host, "SHOW data_checksums") == "on"
    assert _sql(host, "SHOW ssl") == "on"
    assert _sql(host, "SHOW password_encryption") == "scram-sha-256"


def test_no_setting_waits_for_a_restart(host):
    assert _sql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"


def test_exporter_reports_the_server_up(host, hostvars):
    # The exporter answers pg_up 0 on its first scrape after a PostgreSQL restart, then reconnects.
    url = f"http://{hostvars['platform_private_ip']}:9187/metrics"
    probe = host.run(f"for i in 1 2 3 4 5; do curl -s {url} | grep -qx 'pg_up 1' && exit 0; sleep 2; done; exit 1")
    assert probe.rc == 0, host.run(f"curl -s {url} | grep '^pg_up'").stdout


def _backup_info(host) -> dict:
    import json

    return json.loads(host.check_output("sudo -u postgres pgbackrest --stanza=main --output=json info"))[0]


def test_backups_exist_and_the_repository_is_encrypted(host):
    info = _backup_info(host)
    assert info["status"]["code"] == 0, info["status"]["message"]
    assert info["cipher"] == "aes-256-cbc"
    assert any(b["type"] == "full" for b in info["backup"])
    # It holds the MinIO secret and the passphrase: readable by root and the postgres group only.
    assert host.check_output("sudo stat -c '%U %G %a' /etc/pgbackrest/pgbackrest.conf") == "root postgres 640"


def test_wal_archiving_works(host):
    assert _sql(host, "SHOW archive_mode") == "on"
    # The last archive attempt succeeded (an outage leaves last_failed_time after last_archived_time).
    assert _sql(host, "SELECT last_archived_time IS NOT NULL AND (last_failed_time IS NULL"
                      " OR last_failed_time < last_archived_time) FROM pg_stat_archiver") == "t"


def test_backup_timers_are_scheduled(host):
    for kind in ("full", "diff"):
        timer = host.service(f"pgbackrest-{kind}.timer")
        assert timer.is_enabled, kind
        assert timer.is_running, kind
