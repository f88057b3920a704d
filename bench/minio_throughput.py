"""MinIO throughput of a deployed environment next to the raw speed of one of its volumes.

In one run: a raw sequential write and read of MinIO's volume on the first node (dd with direct
I/O, on the mounted XFS, beside MinIO's data), then S3 PUT and GET of 1 MiB and 16 MiB objects with
N parallel clients against the cluster (TLS verified, spread over the nodes). Prints MiB/s of each
and the ratio MinIO / raw.

    .venv/bin/python bench/minio_throughput.py [ENV] [--clients N] [--mib-per-size M]

On the local environment every volume is a loop device on this machine's one disk and every node
shares its 2 cores, so the ratio says what erasure coding, TLS and the network stack cost here,
not what four droplets would do.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import urllib3
from minio import Minio

from platform_ctl.access import ssh_options
from platform_ctl.environment import Environment
from platform_ctl.paths import Project
from platform_ctl.vault import read_vault, vault_password

MIB = 1024 * 1024
BUCKET = "bench"


def _ssh(env: Environment, address: str, command: str) -> str:
    access = env.access(create=False)
    done = subprocess.run(["ssh", *ssh_options(access), f"{access.user}@{address}", command],
                          capture_output=True, text=True, timeout=600, check=True)
    return done.stdout + done.stderr


def _dd_rate(output: str) -> float:
    """MiB/s from dd's summary line ("... copied, 2.1 s, 254 MB/s")."""
    match = re.search(r"copied, ([\d.]+) s", output)
    bytes_ = re.search(r"^(\d+) bytes", output, re.MULTILINE)
    if not (match and bytes_):
        raise RuntimeError(f"unexpected dd output: {output[-300:]}")
    return int(bytes_.group(1)) / MIB / float(match.group(1))


def drop_page_cache(env: Environment) -> None:
    """On the local backend a volume is a loop device over a file of this machine, whose reads hit this
    machine's page cache even with direct I/O inside the container: drop it before every read."""
    if env.spec.provider == "local":
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def raw_volume(env: Environment, address: str, mib: int) -> tuple[float, float]:
    path = "/mnt/minio/bench-raw.dd"
    write = _ssh(env, address, f"sudo dd if=/dev/urandom of={path}.src bs=1M count={mib} status=none && "
                               f"sudo dd if={path}.src of={path} bs=1M oflag=direct conv=fsync 2>&1")
    drop_page_cache(env)
    read = _ssh(env, address, f"sudo dd if={path} of=/dev/null bs=1M iflag=direct 2>&1; sudo rm -f {path} {path}.src")
    return _dd_rate(write), _dd_rate(read)


def s3(env: Environment, clients: list[Minio], size: int, total_mib: int, parallel: int) -> tuple[float, float]:
    count = max(parallel, total_mib * MIB // size)
    body = os.urandom(size)
    keys = [f"{size // MIB}MiB/{i:05d}" for i in range(count)]

    def put(i: int) -> None:
        clients[i % len(clients)].put_object(BUCKET, keys[i], io.BytesIO(body), size, part_size=16 * MIB)

    def get(i: int) -> None:
        response = clients[i % len(clients)].get_object(BUCKET, keys[i])
        try:
            while response.read(MIB):
                pass
        finally:
            response.close()
            response.release_conn()

    rates = []
    for job in (put, get):
        if job is get:
            drop_page_cache(env)
        started = time.monotonic()
        with ThreadPoolExecutor(parallel) as pool:
            list(pool.map(job, range(count)))
        rates.append(count * size / MIB / (time.monotonic() - started))
    for key in keys:
        clients[0].remove_object(BUCKET, key)
    return rates[0], rates[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", nargs="?", default="local")
    parser.add_argument("--clients", type=int, default=8, help="parallel S3 clients")
    parser.add_argument("--mib-per-size", type=int, default=256, help="data moved per object size and direction")
    args = parser.parse_args()

    env = Environment.load(Project.discover(), args.env)
    if not env.inventory.exists():
        print(f"{args.env} is not deployed: run `platform-ctl deploy {args.env}` first", file=sys.stderr)
        return 2
    hosts = env.backend.hosts(env.spec)
    nodes = sorted(h.name for h in hosts if "minio" in h.groups)
    addresses = {h.name: h.private_ip for h in hosts}
    secrets = read_vault(env.project.vault_path(args.env), vault_password(args.env))
    http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(env.state_dir / "pki" / "ca.crt"),
                               maxsize=args.clients, timeout=60)
    clients = [Minio(f"{addresses[n]}:9000", secrets["vault_minio_root_user"], secrets["vault_minio_root_password"],
                     secure=True, http_client=http) for n in nodes]
    if not clients[0].bucket_exists(BUCKET):
        clients[0].make_bucket(BUCKET)

    print(f"MinIO on {len(nodes)} nodes of {args.env!r}, {args.clients} parallel clients, "
          f"{args.mib_per_size} MiB per object size and direction")
    raw_write, raw_read = raw_volume(env, addresses[nodes[0]], args.mib_per_size)
    print(f"raw volume of {nodes[0]} (dd, direct I/O): write {raw_write:7.1f} MiB/s   read {raw_read:7.1f} MiB/s")
    for size in (1 * MIB, 16 * MIB):
        put, get = s3(env, clients, size, args.mib_per_size, args.clients)
        print(f"S3 {size // MIB:>2} MiB objects:              PUT   {put:7.1f} MiB/s   GET  {get:7.1f} MiB/s"
              f"   ratio PUT/raw write {put / raw_write:4.2f}   GET/raw read {get / raw_read:4.2f}")
    clients[0].remove_bucket(BUCKET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
