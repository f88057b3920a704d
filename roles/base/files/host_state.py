"""Read the host state the base role decides from, in one round trip; print it as JSON.

Run by tasks/preflight.yml as the login user (never root: SSH_CLIENT only exists in the login
session, and nothing here needs more). Reads only; changes nothing.

argv[1] is a JSON object:
  ssh_sources  CIDRs the firewall will admit SSH from (the VPC and the admin CIDRs)
  packages     Debian packages the role installs
  sysctl_keys  kernel parameters whose running values are wanted ([] when sysctls are not applied)
"""

import ipaddress
import json
import os
import pwd
import subprocess
import sys

DPKG_UPDATES = "/var/lib/dpkg/updates"
APT_LISTS = "/var/lib/apt/lists"
CLOUD_INIT_DROPINS = "/etc/cloud/cloud.cfg.d"


def ssh_client(sources):
    """The address Ansible logs in from and whether the firewall admits it (None outside SSH)."""
    client = os.environ.get("SSH_CLIENT", "").split(" ")[0]
    if not client:
        return None, None
    address = ipaddress.ip_address(client)
    address = getattr(address, "ipv4_mapped", None) or address
    networks = [ipaddress.ip_network(c, strict=False) for c in sources]
    return str(address), any(address.version == n.version and address in n for n in networks)


def dpkg_packages():
    """Installed packages, and those an interrupted dpkg run left half-installed.

    dpkg-query(1) "db:Status-Abbrev" is <want><status><error>: installed is status "i" with no
    error flag; healthy is status not-installed, config-files or installed, with no error flag.
    """
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${binary:Package}\t${db:Status-Abbrev}\n"],
        capture_output=True, text=True, check=True,
    ).stdout
    installed, broken = set(), []
    for line in out.splitlines():
        package, _, abbrev = line.partition("\t")
        abbrev = abbrev.ljust(3)
        if abbrev[1] not in "nci" or abbrev[2] != " ":
            broken.append(package)
        elif abbrev[1] == "i":
            installed.add(package)
    return installed, broken


def sysctl(keys):
    """Running values as `sysctl` prints them (whitespace collapsed), and the keys the kernel lacks."""
    values, unknown = {}, []
    for key in keys:
        try:
            with open("/proc/sys/" + key.replace(".", "/")) as f:
                values[key] = " ".join(f.read().split())
        except FileNotFoundError:
            unknown.append(key)
    return values, unknown


def main():
    args = json.loads(sys.argv[1])
    address, allowed = ssh_client(args["ssh_sources"])
    values, unknown = sysctl(args["sysctl_keys"])
    installed, broken = dpkg_packages()
    state = {
        "login_user": pwd.getpwuid(os.getuid()).pw_name,
        "ssh_client": address,
        "ssh_client_allowed": allowed,
        # Unfinished dpkg work: apt refuses to run until `dpkg --configure -a` replays it.
        "dpkg_interrupted": len(os.listdir(DPKG_UPDATES)) if os.path.isdir(DPKG_UPDATES) else 0,
        "dpkg_broken": broken,
        # Anything not plainly a package name (pkg=version, globs) counts as missing: apt decides.
        "packages_missing": [p for p in args["packages"] if p not in installed],
        # Slim images delete the package indexes; apt then finds no package at all.
        "apt_lists": len([n for n in os.listdir(APT_LISTS) if "_Packages" in n]) if os.path.isdir(APT_LISTS) else 0,
        "cloud_init": os.path.isdir(CLOUD_INIT_DROPINS),
        "sysctl": values,
        "sysctl_unknown": unknown,
    }
    json.dump(state, sys.stdout)


main()
