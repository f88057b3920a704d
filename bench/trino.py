"""TPC-H on Trino's tpch catalog: the trino role's derived memory settings against Trino's stock ones.

In one run, on the environment's Trino hosts (groups trino_coordinator and trino_worker), the 22
TPC-H queries (the specification's validation parameters, Trino's tpch column names: no l_/o_/c_
prefixes) run one after another against `tpch.<schema>` (default sf1: data the connector generates
while the query runs, so a query costs CPU and memory, no disk) under two configurations:

- derived: what the role deployed. jvm.config is `_trino_jvm_options` (roles/trino/vars/main.yml):
  -Xmx = -Xms = 70 % of the host's memory below 8 GiB (80 % from 8 GiB), G1 with 32 MiB regions,
  a 512 MiB code cache, Trino's other recommended flags and the environment's truststore;
  config.properties has query.max-memory-per-node and memory.heap-headroom-per-node at 30 % of that
  heap and query.max-memory = the per-node limit x 64 nodes, a ceiling that never binds here
  (README "Memory").
- stock: the same hosts, the same Trino and JDK, the same unit, catalogs and every other file, with
  (1) a jvm.config holding only the options Trino needs to start here: Trino 476 itself requires
  none (at start it checks Java >= 24.0.1, a 64-bit little-endian Linux JVM, 4096+ file descriptors
  and UTF-8 as the default charset, which it is from Java 18 on; another collector than G1 only
  warns), but every node talks HTTPS with certificates from the environment's CA, so the three
  -Djavax.net.ssl.trustStore* lines are kept, copied from the role's file, and nothing else: no
  -Xmx/-Xms (the JVM's ergonomics size the heap: at most 25 % of the container's memory limit,
  initially 1/64), no GC, code cache, recompilation or OOM flags (the JVM's defaults; on these
  2-vCPU hosts the JVM picks G1 itself); and (2) a config.properties without its
  `query.max-memory*`, `query.max-total-memory*` and `memory.heap-headroom-per-node` entries, so
  Trino's defaults apply (30 % of the heap per node for each, 20 GB per query in the cluster);
  every other entry (TLS, discovery, authentication, spill, shutdown) is the role's, byte for byte.
  Both stock files start with a comment naming this script. The effective heap of every node is
  read from the running JVM (jcmd VM.flags) and printed.

How: the two files of every Trino host are backed up in /var/tmp/trino-bench (root 0700, with
their owner, mode and times), the stock ones written, trino restarted on every node (`systemctl
restart trino`, the coordinator first), and the run waits until /v1/info of every node says
starting=false and system.runtime.nodes lists every worker as active again. Switching back copies
the backups over and restarts the same way. The role's files are restored and trino restarted at
the end in every case (also after an error, Ctrl-C, SIGTERM or SIGHUP), and the restored files are
checked byte for byte (sha256, owner, mode) against what was there before the run; a run killed
with SIGKILL is repaired by the next run, which restores a leftover backup first.

Order: one warm-up pass (not counted) whenever a configuration has just been started (and before
the first counted pass), then counted passes in the order derived, stock, stock, derived, ... (one
restart per switch), so that drift of the machine hits both alike. Each query's figure is the
median of its counted passes, wall time on the client from submitting it to its last row; a total
is the sum of the medians. With 2 or more workers the same is done with the derived settings on
all workers against only the first one (the others stopped with `systemctl stop trino` and started
again after); with fewer it prints that and skips it.

    .venv/bin/python bench/trino.py [ENV] [--schema sf1] [--rounds N] [--queries 1,6,...] [--skip-stock]

The client is the `trino` Python package over HTTPS to the coordinator (its address as the backend
reports it: .platform/<env>/local/addresses.json on local), port 8443, user admin with the vault's
vault_trino_admin_password, TLS verified against .platform/<env>/pki/ca.crt. With --schema sf1 the
number of rows of each query is checked against the specification's answer set.
"""

from __future__ import annotations

import argparse
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# This file is bench/trino.py: its directory, first on sys.path when it runs as a script, would
# shadow the trino client package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import requests  # noqa: E402
import trino.auth  # noqa: E402
import trino.dbapi  # noqa: E402
import trino.exceptions  # noqa: E402

from platform_ctl.environment import Environment  # noqa: E402
from platform_ctl.errors import PlatformCtlError  # noqa: E402
from platform_ctl.operations import ssh_argv  # noqa: E402
from platform_ctl.paths import Project  # noqa: E402
from platform_ctl.vault import read_vault, vault_password  # noqa: E402

ETC = "/etc/trino"
FILES = ("jvm.config", "config.properties")
BACKUP_DIR = "/var/tmp/trino-bench"  # noqa: S108 - on the hosts, root 0700
MARKER = "# bench/trino.py: Trino's stock settings for a benchmark; the role's file is restored after it."
PORT = 8443
USER = "admin"
#: jvm.config options the stock configuration keeps: what a node needs to start and join here.
STOCK_JVM_KEEP = (
    "-Djavax.net.ssl.trustStore=", "-Djavax.net.ssl.trustStorePassword=", "-Djavax.net.ssl.trustStoreType=")
#: config.properties entries the stock configuration drops, leaving Trino's defaults.
STOCK_PROPERTIES_DROP = ("query.max-memory", "query.max-total-memory", "memory.heap-headroom-per-node")
READY_TIMEOUT = 600.0

# --------------------------------------------------------------------------------------------------
# TPC-H: the 22 queries with the specification's validation parameters, Trino's tpch column names
# --------------------------------------------------------------------------------------------------

#: The query texts, one file each in bench/tpch/ (qNN.sql).
QUERIES: dict[int, str] = {int(path.stem[1:]): "\n" + path.read_text()
                           for path in sorted((Path(__file__).resolve().parent / "tpch").glob("q*.sql"))}

#: Rows of each query's answer at scale factor 1 (the specification's answer set, after LIMIT).
SF1_ROWS = {1: 4, 2: 100, 3: 10, 4: 5, 5: 5, 6: 1, 7: 4, 8: 2, 9: 175, 10: 20, 11: 1048, 12: 2, 13: 42,
            14: 1, 15: 1, 16: 18314, 17: 1, 18: 57, 19: 1, 20: 186, 21: 100, 22: 7}


def scale_factor(schema: str) -> float:
    """The scale factor of a tpch schema name: tiny = 0.01, sfN = N."""
    if schema == "tiny":
        return 0.01
    match = re.fullmatch(r"sf(\d+(?:\.\d+)?)", schema)
    if not match:
        raise BenchError(f"--schema {schema!r}: use a schema of the tpch catalog (tiny, sf1, sf10, ...)")
    return float(match.group(1))


def query_text(number: int, schema: str) -> str:
    fraction = f"{0.0001 / scale_factor(schema):.10f}".rstrip("0")
    return QUERIES[number].replace("{fraction}", fraction).strip()


# --------------------------------------------------------------------------------------------------
# Hosts
# --------------------------------------------------------------------------------------------------


class BenchError(Exception):
    """A step failed; the message is one line."""


@dataclass(frozen=True)
class Node:
    """A Trino host, reached over SSH as the admin user like `platform-ctl ssh ENV HOST COMMAND`."""

    name: str
    address: str
    coordinator: bool
    memory_mb: int
    ssh: tuple[str, ...]

    def run(self, command: str, timeout: float = 120, stdin: str | None = None) -> str:
        argv = [*self.ssh, "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", f"cd / && {command}"]
        try:
            done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as e:
            raise BenchError(f"{self.name}: `{command}` did not finish in {timeout:.0f}s") from e
        if done.returncode != 0:
            detail = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
            raise BenchError(f"{self.name}: `{command}` failed (exit {done.returncode}): {detail[0]}")
        return done.stdout

    def read(self, path: str) -> str:
        return self.run(f"sudo cat {shlex.quote(path)}")

    def fingerprint(self, directory: str = ETC) -> dict[str, str]:
        """Per file of FILES in ``directory``: its sha256, owner:group and mode."""
        result = {}
        for name in FILES:
            path = shlex.quote(f"{directory}/{name}")
            digest = self.run(f"sudo sha256sum {path}").split()[0]
            result[name] = f"{digest} {self.run(f'sudo stat -c %U:%G:%a {path}').strip()}"
        return result

    def write(self, name: str, content: str) -> None:
        """Replace /etc/trino/<name> with ``content``, owned root:trino 0640 like the role's file."""
        target = f"{ETC}/{name}"
        tmp = f"{ETC}/.{name}.bench"
        self.run(f"sudo sh -c 'umask 077 && cat > {tmp} && chown root:trino {tmp} && chmod 0640 {tmp} "
                 f"&& mv -f {tmp} {target}'", stdin=content)

    def heap(self) -> str:
        """The running JVM's heap and collector, from jcmd VM.flags ('?' when it cannot be read)."""
        try:
            pid = self.run("systemctl show -p MainPID --value trino").strip()
            flags = self.run(f"sudo -u trino /opt/trino/jdk/bin/jcmd {pid} VM.flags", timeout=60)
        except BenchError:
            return "?"
        values = {k: int(v) // 2**20 for k, v in re.findall(r"-XX:(\w+)=(\d+)", flags)}
        gc = next((g for g in ("G1", "Parallel", "Serial", "Z", "Shenandoah") if f"+Use{g}GC" in flags), "?")
        if "MaxHeapSize" not in values:
            return "?"
        return (f"heap {values.get('InitialHeapSize', '?')}-{values['MaxHeapSize']} MiB, {gc}, "
                f"30 % of the heap = {values['MaxHeapSize'] * 3 // 10} MiB")


def memory_settings(jvm: str, properties: str) -> str:
    """The memory lines of a node's files, as one line."""
    heap = [line for line in jvm.splitlines() if line.startswith(("-Xmx", "-Xms"))]
    props = [line for line in properties.splitlines() if line.startswith(STOCK_PROPERTIES_DROP)]
    return " ".join(heap + props) or "none: Trino's defaults"


def stock_jvm_config(role_file: str) -> str:
    keep = [line for line in role_file.splitlines() if line.startswith(STOCK_JVM_KEEP)]
    if len(keep) != len(STOCK_JVM_KEEP):
        raise BenchError(f"jvm.config does not have the truststore options {', '.join(STOCK_JVM_KEEP)}")
    return "\n".join([MARKER, *keep]) + "\n"


def stock_config_properties(role_file: str) -> str:
    lines = [line for line in role_file.splitlines()
             if not line.split("=", 1)[0].strip().startswith(STOCK_PROPERTIES_DROP)]
    return "\n".join([MARKER, *lines]) + "\n"


# --------------------------------------------------------------------------------------------------
# The cluster: SQL over HTTPS, restarts, the two configurations
# --------------------------------------------------------------------------------------------------


@dataclass
class Cluster:
    env: str
    coordinator: Node
    workers: list[Node]
    ca: Path
    password: str
    #: The role's files of every node as found (content), and their fingerprints.
    originals: dict[str, dict[str, str]] = field(default_factory=dict)
    fingerprints: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Whether some node's files may differ from the role's; which workers are stopped.
    dirty: bool = False
    backed_up: bool = False
    stopped: list[Node] = field(default_factory=list)

    @property
    def nodes(self) -> list[Node]:
        return [self.coordinator, *self.workers]

    def session(self) -> requests.Session:
        # trust_env off: requests would let REQUESTS_CA_BUNDLE (the machine's public CAs) override the
        # session's CA file, and environment proxies have no business on the VPC.
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca)
        return session

    def connect(self, schema: str = "sf1") -> Any:
        return trino.dbapi.connect(
            host=self.coordinator.address, port=PORT, user=USER, http_scheme="https",
            auth=trino.auth.BasicAuthentication(USER, self.password), http_session=self.session(),
            catalog="tpch", schema=schema, request_timeout=120, source="bench/trino.py")

    def query(self, sql: str) -> list[list[Any]]:
        cursor = self.connect().cursor()
        cursor.execute(sql)
        return list(cursor.fetchall())

    def active_workers(self) -> int:
        rows = self.query("SELECT count(*) FROM system.runtime.nodes WHERE NOT coordinator AND state = 'active'")
        return int(rows[0][0])

    def wait_ready(self, workers: int) -> None:
        """Until every running node's /v1/info says starting=false and ``workers`` workers are active."""
        deadline = time.monotonic() + READY_TIMEOUT
        session = self.session()
        running = [n for n in self.nodes if n not in self.stopped]
        for node in running:
            while True:
                try:
                    info = session.get(f"https://{node.address}:{PORT}/v1/info", timeout=10).json()
                    if info.get("starting") is False:
                        break
                except (requests.RequestException, ValueError):
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"{node.name}: Trino did not finish starting in {READY_TIMEOUT:.0f}s")
                time.sleep(2)
        seen = -1
        while True:
            try:
                seen = self.active_workers()
                if seen == workers:
                    return
            except (trino.exceptions.Error, requests.RequestException):
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"system.runtime.nodes lists {seen} active workers, not {workers}, "
                                 f"after {READY_TIMEOUT:.0f}s")
            time.sleep(2)

    def restart(self) -> float:
        """Restart trino on every running node, the coordinator first; seconds until all are ready."""
        started = time.monotonic()
        for node in self.nodes:
            if node not in self.stopped:
                node.run("sudo systemctl restart trino", timeout=400)
        self.wait_ready(len(self.workers) - len(self.stopped))
        return time.monotonic() - started

    # -- the role's files ------------------------------------------------------------------------

    def record_originals(self) -> None:
        """Read the role's files of every node; repair a run that was killed before restoring them."""
        for node in self.nodes:
            leftover = node.run(f"if sudo test -d {BACKUP_DIR}; then echo yes; fi").strip() == "yes"
            if leftover:
                current = "".join(node.read(f"{ETC}/{name}") for name in FILES)
                if MARKER in current:
                    print(f"{node.name}: the stock files of a killed run are in place: restoring the role's "
                          f"from {BACKUP_DIR}", flush=True)
                    self._copy_back(node)
                    self.dirty = True
                node.run(f"sudo rm -rf {BACKUP_DIR}")
        if self.dirty:
            print(f"  restarted with the role's files in {self.restart():.0f}s", flush=True)
            self.dirty = False
        for node in self.nodes:
            files = {name: node.read(f"{ETC}/{name}") for name in FILES}
            if "-Xmx" not in files["jvm.config"] or "query.max-memory-per-node=" not in files["config.properties"]:
                raise BenchError(f"{node.name}: {ETC} does not hold the role's memory settings: "
                                 f"converge with `platform-ctl deploy {self.env}` first")
            self.originals[node.name] = files
            self.fingerprints[node.name] = node.fingerprint()

    def back_up(self) -> None:
        paths = " ".join(f"{ETC}/{name}" for name in FILES)
        for node in self.nodes:
            node.run(f"sudo install -d -m 0700 {BACKUP_DIR} && sudo cp -p {paths} {BACKUP_DIR}/")
            if node.fingerprint(BACKUP_DIR) != self.fingerprints[node.name]:
                raise BenchError(f"{node.name}: the backup in {BACKUP_DIR} differs from {ETC}")
        self.backed_up = True

    @staticmethod
    def _copy_back(node: Node) -> None:
        # cp -p over the existing file: the role's bytes, owner, mode and times.
        for name in FILES:
            node.run(f"sudo cp -p {BACKUP_DIR}/{name} {ETC}/{name}")

    def use_stock(self) -> float:
        self.dirty = True
        for node in self.nodes:
            files = self.originals[node.name]
            node.write("jvm.config", stock_jvm_config(files["jvm.config"]))
            node.write("config.properties", stock_config_properties(files["config.properties"]))
        return self.restart()

    def use_derived(self) -> float:
        for node in self.nodes:
            self._copy_back(node)
        seconds = self.restart()
        self.dirty = False
        return seconds

    def check_restored(self) -> list[str]:
        """Nodes whose files differ from what was found (empty: all byte-identical)."""
        return [node.name for node in self.nodes if node.fingerprint() != self.fingerprints[node.name]]

    def remove_backups(self) -> None:
        for node in self.nodes:
            node.run(f"sudo rm -rf {BACKUP_DIR}")

    # -- workers ---------------------------------------------------------------------------------

    def stop_workers(self, keep: int) -> float:
        started = time.monotonic()
        for node in self.workers[keep:]:
            self.stopped.append(node)
            node.run("sudo systemctl stop trino", timeout=400)
        self.wait_ready(keep)
        return time.monotonic() - started

    def start_workers(self) -> float:
        started = time.monotonic()
        while self.stopped:
            node = self.stopped[0]
            node.run("sudo systemctl start trino", timeout=400)
            self.stopped.pop(0)
        self.wait_ready(len(self.workers))
        return time.monotonic() - started


# --------------------------------------------------------------------------------------------------
# Passes and comparisons
# --------------------------------------------------------------------------------------------------

#: query number -> seconds of each counted pass (None: the query failed in that pass).
Times = dict[int, list[float | None]]


def run_query(cluster: Cluster, number: int, schema: str) -> tuple[float, int]:
    """Seconds from submitting the query to its last row, and its number of rows."""
    cursor = cluster.connect(schema).cursor()
    started = time.monotonic()
    try:
        cursor.execute(query_text(number, schema))
        rows = cursor.fetchall()
    except KeyboardInterrupt:
        try:
            cursor.cancel()
        except Exception as e:  # best effort on the way out
            print(f"Q{number}: could not cancel the query: {e}", file=sys.stderr)
        raise
    return time.monotonic() - started, len(rows)


def run_pass(cluster: Cluster, queries: list[int], schema: str, label: str) -> dict[int, float | None]:
    """Every query once; prints the pass's total and any failure or unexpected row count."""
    times: dict[int, float | None] = {}
    for number in queries:
        try:
            seconds, rows = run_query(cluster, number, schema)
        except trino.exceptions.TrinoQueryError as e:
            times[number] = None
            print(f"    Q{number} failed: {e.error_name}: {str(e.message).splitlines()[0][:200]}", flush=True)
            continue
        times[number] = seconds
        expected = SF1_ROWS.get(number) if schema == "sf1" else None
        if expected is not None and rows != expected:
            print(f"    Q{number}: {rows} rows, the specification's answer has {expected}", flush=True)
    done = [t for t in times.values() if t is not None]
    failed = len(times) - len(done)
    print(f"  {label:28} {sum(done):8.1f} s" + (f"  ({failed} failed)" if failed else ""), flush=True)
    return times


@dataclass(frozen=True)
class Setup:
    label: str
    activate: Callable[[], float | None]  # seconds it took to switch, or None when already active


def compare(cluster: Cluster, setups: list[Setup], args: argparse.Namespace, queries: list[int]) -> dict[str, Times]:
    """Counted passes in the order A, B, B, A, ... (one setup: A, A, ...), a warm-up pass after each switch."""
    pattern = [0, 1, 1, 0] if len(setups) == 2 else [0]
    order = [setups[pattern[i % len(pattern)]] for i in range(args.rounds * len(setups))]
    results: dict[str, Times] = {s.label: {q: [] for q in queries} for s in setups}
    active: Setup | None = None
    counted = dict.fromkeys(results, 0)
    for setup in order:
        if setup is not active:
            switched = setup.activate()
            if switched is not None:
                print(f"  switched to {setup.label}: ready in {switched:.0f} s", flush=True)
            active = setup
            run_pass(cluster, queries, args.schema, f"{setup.label}, warm-up")
        counted[setup.label] += 1
        times = run_pass(cluster, queries, args.schema, f"{setup.label}, pass {counted[setup.label]}")
        for number, seconds in times.items():
            results[setup.label][number].append(seconds)
    return results


def median(values: list[float | None]) -> float | None:
    """The median of a query's passes; None if it failed in any."""
    if not values or any(v is None for v in values):
        return None
    return statistics.median(v for v in values if v is not None)


def report(results: dict[str, Times], queries: list[int], ratio: tuple[str, str] | None) -> None:
    """Per query the median of each setup and the ratio ``ratio[0] / ratio[1]``; the sums of the medians."""
    labels = list(results)
    medians = {label: {q: median(results[label][q]) for q in queries} for label in labels}
    width = max(12, *(len(label) + 4 for label in labels))
    ratio_width = len(f"{ratio[0]}/{ratio[1]}") + 4 if ratio else 0
    header = "query " + "".join(f"{label + ' s':>{width}}" for label in labels)
    print(header + (f"{ratio[0] + '/' + ratio[1]:>{ratio_width}}" if ratio else ""))

    def row(name: str, values: dict[str, float | None]) -> str:
        line = f"{name:6}" + "".join(f"{v:>{width}.2f}" if v is not None else f"{'failed':>{width}}"
                                     for v in values.values())
        if ratio:
            a, b = values[ratio[0]], values[ratio[1]]
            line += f"{f'{a / b:.2f}x' if a is not None and b else '-':>{ratio_width}}"
        return line

    for q in queries:
        print(row(f"Q{q}", {label: medians[label][q] for label in labels}))
    complete = [q for q in queries if all(medians[label][q] is not None for label in labels)]
    print(row("total", {label: sum(medians[label][q] or 0.0 for q in complete) for label in labels}))
    missing = [f"Q{q}" for q in queries if q not in complete]
    if missing:
        print(f"(the totals leave out {', '.join(missing)}: failed in some pass)")


# --------------------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------------------


def load(env_name: str) -> Cluster:
    """The environment's Trino nodes, answering over SSH, and the coordinator's admin credentials."""
    try:
        project = Project.discover()
        env = Environment.load(project, env_name)
        if not env.inventory.exists():
            raise BenchError(f"{env_name} is not deployed: run `platform-ctl deploy {env_name}` first")
        hosts = sorted(env.backend.hosts(env.spec), key=lambda h: h.name)
        nodes = [Node(h.name, h.public_ip, "trino_coordinator" in h.groups, h.size.memory_mb,
                      tuple(ssh_argv(env, h.name)))
                 for h in hosts if {"trino_coordinator", "trino_worker"} & set(h.groups)]
        password = read_vault(project.vault_path(env_name), vault_password(env_name))["vault_trino_admin_password"]
    except PlatformCtlError as e:
        raise BenchError(str(e)) from e
    except KeyError as e:
        raise BenchError(f"the vault of {env_name} has no vault_trino_admin_password") from e
    coordinators = [n for n in nodes if n.coordinator]
    if len(coordinators) != 1:
        raise BenchError(f"{env_name} has {len(coordinators)} hosts in trino_coordinator, not 1")
    return Cluster(env_name, coordinators[0], [n for n in nodes if not n.coordinator],
                   env.state_dir / "pki" / "ca.crt", password)


def parse_queries(text: str | None) -> list[int]:
    if not text:
        return sorted(QUERIES)
    try:
        numbers = [int(part.strip().lstrip("Qq")) for part in text.split(",") if part.strip()]
    except ValueError as e:
        raise BenchError(f"--queries {text!r}: give query numbers 1-22, separated by commas") from e
    wrong = [n for n in numbers if n not in QUERIES]
    if wrong or not numbers:
        raise BenchError(f"--queries {text!r}: give query numbers 1-22, separated by commas")
    return list(dict.fromkeys(numbers))


def unwind(signum: int, _frame: object) -> None:
    """SIGTERM and SIGHUP unwind like Ctrl-C, through the clean-up."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


def clean_up(cluster: Cluster) -> int:
    """Workers started, the role's files back and trino restarted with them, checked byte for byte."""
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, signal.SIG_IGN)  # a second Ctrl-C must not leave the stock files behind
    status = 0
    try:
        if cluster.stopped:
            print(f"  started the stopped workers again: ready in {cluster.start_workers():.0f} s", flush=True)
    except BenchError as e:
        print(f"clean-up: {e}", file=sys.stderr)
        status = 1
    try:
        if cluster.dirty:
            print(f"  restored the role's files: ready in {cluster.use_derived():.0f} s", flush=True)
    except BenchError as e:
        print(f"clean-up: {e}", file=sys.stderr)
        status = 1
    if not cluster.fingerprints:
        return status
    try:
        differ = cluster.check_restored()
        if differ:
            print(f"clean-up: on {', '.join(differ)} {ETC}/{{{','.join(FILES)}}} differ from the role's files; "
                  f"the originals are in {BACKUP_DIR} there", file=sys.stderr)
            return 1
        if cluster.backed_up:
            cluster.remove_backups()
    except BenchError as e:
        print(f"clean-up: {e}", file=sys.stderr)
        return 1
    print(f"the role's files {'are back' if cluster.backed_up else 'were not touched'}: byte-identical to those "
          f"found (sha256, owner, mode) on {', '.join(n.name for n in cluster.nodes)}")
    return status


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", nargs="?", default="local")
    parser.add_argument("--schema", default="sf1", help="schema of the tpch catalog (tiny, sf1, sf10, ...)")
    parser.add_argument("--rounds", type=int, default=2, help="counted passes per configuration")
    parser.add_argument("--queries", help="a subset, e.g. 1,6,18 (default: all 22)")
    parser.add_argument("--skip-stock", action="store_true", help="only the role's settings: no stock passes")
    args = parser.parse_args()
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    try:
        queries = parse_queries(args.queries)
        scale_factor(args.schema)
        cluster = load(args.env)
        for node in cluster.nodes:
            node.run("true", timeout=30)
        cluster.wait_ready(len(cluster.workers))
    except (BenchError, trino.exceptions.Error, requests.RequestException) as e:
        print(f"not ready: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130

    print(f"TPC-H on tpch.{args.schema} of {args.env!r}: {len(queries)} queries, coordinator "
          f"{cluster.coordinator.name} ({cluster.coordinator.address}), {len(cluster.workers)} worker(s); "
          f"{args.rounds} counted pass(es) per configuration", flush=True)
    started = time.monotonic()
    status = 0
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, unwind)
    try:
        cluster.record_originals()
        for node in cluster.nodes:
            files = cluster.originals[node.name]
            print(f"  {node.name:16} derived: {memory_settings(files['jvm.config'], files['config.properties'])}; "
                  f"running: {node.heap()}", flush=True)
        setups = [Setup("derived", lambda: cluster.use_derived() if cluster.dirty else None)]
        if not args.skip_stock:
            cluster.back_up()

            def stock() -> float:
                seconds = cluster.use_stock()
                for node in cluster.nodes:
                    print(f"  {node.name:16} stock: no -Xmx/-Xms, 25 % of {node.memory_mb} MiB = "
                          f"{node.memory_mb // 4} MiB by ergonomics; running: {node.heap()}", flush=True)
                return seconds

            setups.append(Setup("stock", stock))
        results = compare(cluster, setups, args, queries)
        if cluster.dirty:
            print(f"  back to derived: ready in {cluster.use_derived():.0f} s", flush=True)

        workers: dict[str, Times] | None = None
        if len(cluster.workers) >= 2:
            print(f"workers: derived settings on all {len(cluster.workers)} workers against only "
                  f"{cluster.workers[0].name}", flush=True)
            all_label, one_label = f"{len(cluster.workers)} workers", "1 worker"
            workers = compare(cluster, [
                Setup(all_label, lambda: cluster.start_workers() if cluster.stopped else None),
                Setup(one_label, lambda: cluster.stop_workers(1)),
            ], args, queries)
            if cluster.stopped:
                print(f"  all workers again: ready in {cluster.start_workers():.0f} s", flush=True)

        print()
        print(f"medians of {args.rounds} counted pass(es), seconds per query (wall time on the client)")
        report(results, queries, None if args.skip_stock else ("stock", "derived"))
        if workers is not None:
            print()
            report(workers, queries, ("1 worker", f"{len(cluster.workers)} workers"))
        else:
            print(f"workers comparison skipped: it needs 2+ workers, {args.env!r} has "
                  f"{len(cluster.workers)} (trino_worker count in inventories/{args.env}/platform.yml)")
    except BenchError as e:
        print(e, file=sys.stderr)
        status = 1
    except (trino.exceptions.Error, requests.RequestException) as e:
        print(f"Trino: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}", file=sys.stderr)
        status = 1
    except KeyboardInterrupt as e:
        print(f"interrupted ({e or 'SIGINT'}): restoring the role's files", file=sys.stderr)
        status = 130
    finally:
        status = clean_up(cluster) or status
        print(f"whole run: {(time.monotonic() - started) / 60:.1f} min")
    return status


if __name__ == "__main__":
    sys.exit(main())
