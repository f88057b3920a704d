"""What the base role promises on every host, checked on the real host over SSH."""

from __future__ import annotations

import json

testinfra_hosts = ["ansible://all"]

MODERN_CIPHERS = {
    "chacha20-poly1305@openssh.com", "aes256-gcm@openssh.com", "aes128-gcm@openssh.com",
    "aes256-ctr", "aes192-ctr", "aes128-ctr",
}


def _journal(host, unit: str) -> str:
    with host.sudo():
        return host.run(f"journalctl -u {unit} -n 30 --no-pager").stdout


def test_sshd_effective_config_is_hardened(host):
    with host.sudo():
        effective = dict(
            line.split(" ", 1) for line in host.check_output("sshd -T").splitlines() if " " in line
        )
    assert effective["passwordauthentication"] == "no"
    assert effective["kbdinteractiveauthentication"] == "no"
    assert effective["permitrootlogin"] == "no"
    assert effective["pubkeyauthentication"] == "yes"
    assert set(effective["ciphers"].split(",")) <= MODERN_CIPHERS


def test_firewall_is_default_deny(host):
    with host.sudo():
        ruleset = host.check_output("nft list ruleset")
    assert "hook input" in ruleset
    assert "policy drop" in ruleset
    assert host.service("nftables").is_enabled


def test_services_enabled_and_running(host):
    for unit in ("ssh", "chrony", "unattended-upgrades"):
        service = host.service(unit)
        assert service.is_enabled, f"{unit} not enabled"
        assert service.is_running, f"{unit} not running:\n{_journal(host, unit)}"


def test_hosts_file_resolves_every_host(host, hostvars):
    hosts_file = host.file("/etc/hosts").content_string
    entries = {line.split()[0]: line.split()[1:] for line in hosts_file.splitlines()
               if line.strip() and not line.lstrip().startswith("#")}
    for name in hostvars["groups"]["all"]:
        assert any(name in names for names in entries.values()), f"{name} missing from /etc/hosts"
    resolved = host.check_output(f"getent hosts {hostvars['inventory_hostname']}").split()[0]
    assert resolved == hostvars["platform_private_ip"]


def test_admin_user_has_key_and_sudo(host, hostvars):
    user = host.user(hostvars["platform_admin_user"])
    assert user.exists
    keys = host.file(f"{user.home}/.ssh/authorized_keys")
    assert keys.mode == 0o600
    assert hostvars["platform_admin_ssh_public_key"].split()[1] in keys.content_string
    assert host.run("sudo -n true").rc == 0


def test_platform_fact_reports_the_droplet_size_not_the_machine(host, hostvars):
    fact = json.loads(host.check_output("/etc/ansible/facts.d/platform.fact"))
    size = hostvars["platform_size"]
    # A droplet reports a little less than its slug (kernel reservations); a local container exactly it.
    assert 0.85 * size["memory_mb"] <= fact["memory_mb"] <= size["memory_mb"]
    assert 1 <= fact["vcpus"] <= size["vcpus"]


def test_volumes_are_attached_at_their_by_id_path(host, hostvars):
    for volume in hostvars["platform_volumes"]:
        with host.sudo():
            device = host.file(volume["device"])
            assert device.exists, f"{volume['device']} missing"
            assert host.run(f"test -b $(readlink -f {volume['device']})").rc == 0


def test_journald_is_size_limited(host):
    drop_ins = host.run("ls /etc/systemd/journald.conf.d/").stdout.split()
    assert drop_ins, "no journald drop-in"
    text = "".join(host.file(f"/etc/systemd/journald.conf.d/{d}").content_string for d in drop_ins)
    assert "SystemMaxUse=" in text
