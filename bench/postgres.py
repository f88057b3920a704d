"""pgbench throughput of the PostgreSQL cluster the postgresql role tuned, against stock settings.

In one run, on the environment's postgres host: beside the role's cluster (15/main) a second
cluster, 15/benchstock, is created on the same data volume with the same initdb options (data
checksums, C.UTF-8) and nothing added to the postgresql.conf pg_createcluster writes, so every
setting the role tunes (`_postgresql_tuning` in roles/postgresql/vars/main.yml) keeps PostgreSQL's
own default; the run refuses to go on if one does not. Each cluster gets a throwaway database
`pgbench_bench` initialised at the same scale. Then pgbench's TPC-B-like script runs with the same
clients, threads and duration, alternating between the clusters in the order tuned, stock, stock,
tuned, ... so that drift of the machine hits both alike. Before every counted run the cluster gets
a warm-up run (not counted) and a CHECKPOINT. pgbench runs on the host, as postgres, over the Unix
socket; only one cluster is under load at a time, and the stock one is stopped between its runs to
leave the host its memory. The database and the stock cluster are dropped at the end, also after
an error or Ctrl-C. The role's cluster also archives its WAL (archive_mode, pgBackRest to MinIO)
and the stock one does not: the table shows archive_mode, and the tuned figures include that cost.

    .venv/bin/python bench/postgres.py [ENV] [--scale S] [--clients C] [--threads T]
                                             [--duration SECONDS] [--warmup SECONDS] [--rounds N]

Prints the key settings of both clusters, each run, the median TPS and average latency of each and
the ratio tuned/stock. The default scale (20: about 300 MB) is larger than the stock shared_buffers
(128 MB) and fits the tuned one on a 2 GiB host (512 MB), which is where the two should differ most.
On the local environment it also fits the container's page cache, so a stock buffer miss costs a copy,
not a disk read, and every host shares this machine's 2 cores: the ratio is small and moves by a few %.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass

import yaml

from platform_ctl.environment import Environment
from platform_ctl.errors import PlatformCtlError
from platform_ctl.operations import ssh_argv
from platform_ctl.paths import COLLECTION_ROOT, Project

DATABASE = "pgbench_bench"
STOCK_CLUSTER = "benchstock"
STOCK_PORT = 5433
SOCKET_DIR = "/var/run/postgresql"
#: Settings printed for both sides; every key of the role's tuning is checked on the stock side.
SHOWN = ("shared_buffers", "work_mem", "max_wal_size", "effective_cache_size", "wal_buffers", "archive_mode")


class BenchError(Exception):
    """A step on the host failed; the message is one line."""


@dataclass(frozen=True)
class Cluster:
    label: str
    version: str
    name: str
    port: int

    def __str__(self) -> str:
        return f"{self.version}/{self.name} :{self.port}"


@dataclass(frozen=True)
class Remote:
    """The postgres host, reached as the admin user like `platform-ctl ssh ENV HOST COMMAND`."""

    name: str
    ssh: tuple[str, ...]

    def run(self, command: str, timeout: float = 300) -> str:
        # cd /: the tools run as postgres warn when they cannot read the admin user's home.
        argv = [*self.ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"cd / && {command}"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"{self.name}: `{command}` did not finish in {timeout:.0f}s") from e
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise BenchError(f"{self.name}: `{command}` failed (exit {done.returncode}): {detail[0]}")
        return done.stdout

    def psql(self, cluster: Cluster, sql: str, database: str = "postgres") -> str:
        return self.run(f"sudo -u postgres psql -X -At -v ON_ERROR_STOP=1 -h {SOCKET_DIR} -p {cluster.port} "
                        f"-d {database} -c {shlex.quote(sql)}").strip()

    def pgbench(self, cluster: Cluster, options: str, timeout: float) -> str:
        # `timeout` on the host too: a pgbench whose ssh session was cut (Ctrl-C) cannot outlive the run.
        pgbench = f"/usr/lib/postgresql/{cluster.version}/bin/pgbench"
        return self.run(f"sudo -u postgres timeout {timeout:.0f} {pgbench} -h {SOCKET_DIR} -p {cluster.port} "
                        f"{options} {DATABASE} 2>&1", timeout=timeout + 30)


def tuned_setting_names() -> list[str]:
    """The settings the role computes: the keys of `_postgresql_tuning` (values are Jinja, not read)."""
    vars_file = COLLECTION_ROOT / "roles" / "postgresql" / "vars" / "main.yml"
    return list(yaml.safe_load(vars_file.read_text())["_postgresql_tuning"])


def main_cluster(remote: Remote) -> tuple[Cluster, str]:
    """The role's cluster and its data directory, from pg_lsclusters (version port status owner datadir)."""
    for line in remote.run("pg_lsclusters --no-header").splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[1] == "main":
            if not fields[3].startswith("online"):
                raise BenchError(f"{remote.name}: cluster {fields[0]}/main is {fields[3]}, not online")
            return Cluster("tuned", fields[0], "main", int(fields[2])), fields[5]
    raise BenchError(f"{remote.name}: pg_lsclusters lists no cluster 'main': deploy the postgresql role first")


def settings(remote: Remote, cluster: Cluster) -> dict[str, tuple[str, bool]]:
    """Every setting of the running cluster: name -> (value as SHOW prints it, differs from the built-in default).

    A setting whose source is `default` is stock even where pg_settings resolves it (wal_buffers' -1).
    """
    rows = remote.psql(cluster, "SELECT name, current_setting(name), "
                                "setting IS DISTINCT FROM boot_val AND source <> 'default' FROM pg_settings")
    fields = (row.split("|") for row in rows.splitlines())
    return {name: (value, changed == "t") for name, value, changed in fields}


def check_stock(remote: Remote, cluster: Cluster, names: list[str]) -> None:
    """Refuse a stock cluster where a setting the role tunes differs from PostgreSQL's default."""
    current = settings(remote, cluster)
    changed = [f"{n}={current[n][0]}" for n in names if current[n][1]]
    if changed:
        raise BenchError(f"{remote.name}: cluster {cluster} is not stock: {', '.join(changed)}")
    conf_d = remote.run(f"ls -A /etc/postgresql/{cluster.version}/{cluster.name}/conf.d")
    if conf_d.strip():
        raise BenchError(f"{remote.name}: {cluster}'s conf.d is not empty: {' '.join(conf_d.split())}")


def _figure(pattern: str, output: str) -> float:
    match = re.search(pattern, output)
    if not match:
        raise BenchError(f"unexpected pgbench output: {' | '.join(output.strip().splitlines()[-4:])}")
    return float(match.group(1))


def run_pgbench(remote: Remote, cluster: Cluster, args: argparse.Namespace, seconds: int) -> tuple[float, float]:
    """(TPS, average latency in ms) of one pgbench run of ``seconds``."""
    output = remote.pgbench(cluster, f"-c {args.clients} -j {args.threads} -T {seconds}", timeout=seconds + 120)
    tps = _figure(r"tps = ([\d.]+) \(without initial connection time\)", output)
    return tps, _figure(r"latency average = ([\d.]+) ms", output)


def start_stock(remote: Remote, stock: Cluster) -> None:
    remote.run(f"sudo pg_ctlcluster {stock.version} {stock.name} start")


def stop_stock(remote: Remote, stock: Cluster) -> None:
    remote.run(f"sudo pg_ctlcluster {stock.version} {stock.name} stop")


def create_stock(remote: Remote, tuned: Cluster, data_parent: str) -> Cluster:
    """15/benchstock on the data volume, initdb'd like the role's cluster, settings left alone."""
    stock = Cluster("stock", tuned.version, STOCK_CLUSTER, STOCK_PORT)
    drop_stock(remote, stock)  # left over from a run that was killed
    # LC_ALL: pg_createcluster refuses a locale the SSH client names but the host lacks (as in the role).
    remote.run(f"sudo env LC_ALL=C.UTF-8 pg_createcluster --datadir={data_parent}/{stock.name} "
               f"--port={stock.port} --locale=C.UTF-8 --encoding=UTF8 --start-conf=manual "
               f"{stock.version} {stock.name} -- --data-checksums")
    return stock


def drop_stock(remote: Remote, stock: Cluster) -> None:
    conf = f"/etc/postgresql/{stock.version}/{stock.name}"
    remote.run(f"if sudo test -d {conf}; then sudo pg_dropcluster --stop {stock.version} {stock.name}; fi")


def drop_database(remote: Remote, tuned: Cluster) -> None:
    # FORCE: a pgbench left running by an interrupted session is disconnected, not waited for.
    remote.psql(tuned, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


def prepare(remote: Remote, cluster: Cluster, scale: int) -> str:
    """Create and fill the database; return its size."""
    remote.psql(cluster, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    remote.psql(cluster, f"CREATE DATABASE {DATABASE}")
    remote.pgbench(cluster, f"-i -q -s {scale}", timeout=1800)
    return remote.psql(cluster, f"SELECT pg_size_pretty(pg_database_size('{DATABASE}'))")


def measure(remote: Remote, tuned: Cluster, stock: Cluster, args: argparse.Namespace) -> int:
    stock_settings = settings(remote, stock)
    tuned_settings = settings(remote, tuned)
    print(f"{'setting':22} {'tuned (' + str(tuned) + ')':24} stock ({stock})")
    for name in SHOWN:
        print(f"{name:22} {tuned_settings[name][0]:24} {stock_settings[name][0]}")
    stock_size = prepare(remote, stock, args.scale)
    stop_stock(remote, stock)
    tuned_size = prepare(remote, tuned, args.scale)
    print(f"{'database size':22} {tuned_size:24} {stock_size}")

    results: dict[str, list[tuple[float, float]]] = {"tuned": [], "stock": []}
    for round_no in range(1, args.rounds + 1):
        order = (tuned, stock) if round_no % 2 else (stock, tuned)
        for cluster in order:
            if cluster is stock:
                start_stock(remote, stock)
            if args.warmup:
                run_pgbench(remote, cluster, args, args.warmup)
            remote.psql(cluster, "CHECKPOINT")
            tps, latency = run_pgbench(remote, cluster, args, args.duration)
            if cluster is stock:
                stop_stock(remote, stock)
            results[cluster.label].append((tps, latency))
            print(f"  round {round_no}  {cluster.label:6} {tps:9.1f} tps   latency {latency:7.2f} ms", flush=True)

    medians = {label: (statistics.median(t for t, _ in runs), statistics.median(lat for _, lat in runs))
               for label, runs in results.items()}
    for label, (tps, latency) in medians.items():
        print(f"median {label}: {tps:9.1f} tps   latency {latency:7.2f} ms")
    print(f"ratio tuned/stock: {medians['tuned'][0] / medians['stock'][0]:.2f}x")
    return 0


def connect(env_name: str) -> tuple[Remote, Cluster, str]:
    """The environment's first postgres host, answering over SSH, with the role's cluster online."""
    try:
        env = Environment.load(Project.discover(), env_name)
        if not env.inventory.exists():
            raise BenchError(f"{env_name} is not deployed: run `platform-ctl deploy {env_name}` first")
        hosts = sorted(h.name for h in env.backend.hosts(env.spec) if "postgres" in h.groups)
        if not hosts:
            raise BenchError(f"{env_name} has no host in the postgres group: nothing to measure")
        remote = Remote(hosts[0], tuple(ssh_argv(env, hosts[0])))
    except PlatformCtlError as e:
        raise BenchError(str(e)) from e
    try:
        remote.run("true", timeout=30)
        tuned, data_dir = main_cluster(remote)
    except BenchError as e:
        raise BenchError(f"{remote.name} of {env_name} is not reachable or not ready: {e}") from e
    return remote, tuned, data_dir


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", nargs="?", default="local")
    parser.add_argument("--scale", type=int, default=20, help="pgbench scale factor (about 15 MB each)")
    parser.add_argument("--clients", type=int, default=8, help="pgbench client connections")
    parser.add_argument("--threads", type=int, default=2, help="pgbench worker threads")
    parser.add_argument("--duration", type=int, default=60, help="seconds of each counted run")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of the uncounted run before each one (0: none)")
    parser.add_argument("--rounds", type=int, default=2, help="counted runs per cluster")
    args = parser.parse_args()

    try:
        remote, tuned, data_dir = connect(args.env)
    except BenchError as e:
        print(e, file=sys.stderr)
        return 2

    print(f"pgbench on {remote.name} of {args.env!r}: scale {args.scale}, {args.clients} clients, "
          f"{args.threads} threads, {args.duration} s per run ({args.warmup} s warm-up before each), "
          f"{args.rounds} counted rounds")
    # SIGTERM unwinds like Ctrl-C, through the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        stock = create_stock(remote, tuned, data_dir.rsplit("/", 1)[0])
        start_stock(remote, stock)
        check_stock(remote, stock, tuned_setting_names())
        return measure(remote, tuned, stock, args)
    except BenchError as e:
        print(e, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: dropping the stock cluster and the database", file=sys.stderr)
        return 130
    finally:
        # A second Ctrl-C must not leave the stock cluster or the database behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        for step, what in ((drop_stock, Cluster("stock", tuned.version, STOCK_CLUSTER, STOCK_PORT)),
                           (drop_database, tuned)):
            try:
                step(remote, what)
            except BenchError as e:
                print(f"clean-up: {e}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
