"""Trino's CPU cost on a small host with both JIT compilers (the JVM's default) against C1 alone.

The local environment restarts Trino often (every rotation restarts each node one to three times)
and its queries are small; the C2 compiler's work then pays back little. This measures, side by
side in one run, what one Trino node costs in CPU seconds (the JVM's user + system time, read from
/proc, so other load on the machine does not count) under two jvm.config variants:

- c1+c2: the trino role's options (`_trino_jvm_options` in roles/trino/vars/main.yml, the heap as
  the role sizes it for a 2 GiB host) without the truststore lines (this node speaks HTTP) and the
  heap dump's path;
- c1: the same plus `-XX:TieredStopAtLevel=1` (C1 only: compiled code is slower, compiling cheaper).

For each: the CPU until /v1/info says starting=false and a first query on tpch.tiny answers
(the start-up), then the CPU of ``--queries`` TPC-H queries (Q1 and Q6 in turn on tpch.tiny, as small
as the end-to-end suite's client loops' queries) and their wall time, then the CPU of ``--idle``
seconds of idling. The variants alternate (c1+c2, c1, c1, c1+c2, ...) for ``--rounds`` rounds
each, so that drift of the machine hits both alike; a figure is the median of its rounds. Nothing
is deployed: one coordinator (which also runs the splits) on 127.0.0.1, started with Trino's own
launcher from the artifact cache's Trino and JDK (unpacked once under
~/.cache/platform-ctl/bench/trino-jit, with the plugins the artifact keeps).

    .venv/bin/python bench/trino_jit.py [--rounds 2] [--queries 40] [--idle 60]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.request
from pathlib import Path

# bench/ holds trino.py: first on sys.path when this runs as a script, it would shadow the client.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import trino.dbapi  # noqa: E402
import trino.exceptions  # noqa: E402
import yaml  # noqa: E402

from platform_ctl.artifacts import TRINO_PLUGINS  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CACHE = Path.home() / ".cache" / "platform-ctl"
WORK = CACHE / "bench" / "trino-jit"
#: The role's heap for a 2 GiB host (70 % of 2048 MiB: roles/trino README, "Memory").
HEAP_MB = 1433
#: The role's own list, read from its vars: the heap filled in; the truststore lines and the heap
#: dump's path (the role's data directory) left out.
ROLE_OPTIONS = [option.replace("{{ _trino_heap_mb }}", str(HEAP_MB)) for option in
                yaml.safe_load((REPO / "roles" / "trino" / "vars" / "main.yml").read_text())["_trino_jvm_options"]
                if "{{ _trino_heap_mb }}" in option
                or ("{{" not in option and not option.startswith("-Djavax.net.ssl."))]
VARIANTS = {"c1+c2": ROLE_OPTIONS, "c1": [*ROLE_OPTIONS, "-XX:TieredStopAtLevel=1"]}
QUERIES = [(REPO / "bench" / "tpch" / name).read_text().strip().rstrip(";") for name in ("q01.sql", "q06.sql")]
TICKS = os.sysconf("SC_CLK_TCK")


def _unpacked() -> tuple[Path, Path]:
    """Trino's installation (bin, lib, the kept plugins) and the JDK, from the artifact cache."""
    trino_tar = next((CACHE / "artifacts" / "trino").glob("*/trino-server-*.tar.gz"))
    jdk_tar = next((CACHE / "artifacts" / "java").glob("*/jdk-*.tar.gz"))
    server, jdk = WORK / trino_tar.name.removesuffix(".tar.gz"), WORK / jdk_tar.name.removesuffix(".tar.gz")
    for archive, target, keep in ((trino_tar, server, True), (jdk_tar, jdk, False)):
        if target.exists():
            continue
        print(f"unpacking {archive.name} ...", flush=True)
        partial = Path(tempfile.mkdtemp(dir=WORK.parent if WORK.parent.exists() else None))
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if not keep or _kept(m.name)]
            tar.extractall(partial, members=members, filter="tar")
        WORK.mkdir(parents=True, exist_ok=True)
        (partial / next(partial.iterdir()).name).rename(target)
        shutil.rmtree(partial)
    return server, jdk


def _kept(name: str) -> bool:
    parts = name.split("/")
    if len(parts) < 2 or parts[1] in ("bin", "lib"):
        return True
    return parts[1] == "plugin" and (len(parts) < 3 or parts[2] in TRINO_PLUGINS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu(pid: int) -> float:
    """User + system seconds of ``pid`` and its reaped children."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / TICKS


def _started(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/info", timeout=2) as answer:
            return not json.load(answer)["starting"]
    except OSError:
        return False


def one_round(server: Path, jdk: Path, options: list[str], queries: int, idle: float) -> dict[str, float]:
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="trino-jit-") as tmp:
        etc, data = Path(tmp) / "etc", Path(tmp) / "data"
        (etc / "catalog").mkdir(parents=True)
        (etc / "jvm.config").write_text("\n".join(options) + "\n")
        (etc / "node.properties").write_text(
            f"node.environment=bench\nnode.data-dir={data}\nnode.internal-address=127.0.0.1\n")
        (etc / "config.properties").write_text(
            f"coordinator=true\nnode-scheduler.include-coordinator=true\nhttp-server.http.port={port}\n"
            f"discovery.uri=http://127.0.0.1:{port}\n")
        (etc / "catalog" / "tpch.properties").write_text("connector.name=tpch\n")
        env = {**os.environ, "JAVA_HOME": str(jdk), "PATH": f"{jdk}/bin:{os.environ['PATH']}"}
        proc = subprocess.Popen([str(server / "bin" / "launcher"), "run", f"--etc-dir={etc}", f"--data-dir={data}"],
                                env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            began = time.monotonic()
            while not _started(port):
                if proc.poll() is not None or time.monotonic() - began > 600:
                    raise RuntimeError(f"Trino did not start (exit {proc.returncode})")
                time.sleep(0.5)
            cursor = trino.dbapi.connect(host="127.0.0.1", port=port, user="bench", catalog="tpch",
                                         schema="tiny").cursor()
            while True:  # the node schedules splits once its scheduler lists it
                try:
                    cursor.execute("SELECT count(*) FROM nation")
                    if cursor.fetchall() == [[25]]:
                        break
                except trino.exceptions.TrinoQueryError as error:  # before: "nodes is empty" or this
                    if "nodes is empty" not in str(error) and error.error_name != "NO_NODES_AVAILABLE":
                        raise
                time.sleep(0.5)
            figures = {"start_s": time.monotonic() - began, "start_cpu": _cpu(proc.pid)}
            before, began = _cpu(proc.pid), time.monotonic()
            for i in range(queries):
                cursor.execute(QUERIES[i % len(QUERIES)])
                cursor.fetchall()
            figures.update(queries_s=time.monotonic() - began, queries_cpu=_cpu(proc.pid) - before)
            before = _cpu(proc.pid)
            time.sleep(idle)
            figures["idle_cpu"] = _cpu(proc.pid) - before
            figures["total_cpu"] = _cpu(proc.pid)
            return figures
        finally:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    server, jdk = _unpacked()
    order = [name for i in range(args.rounds) for name in (("c1+c2", "c1") if i % 2 == 0 else ("c1", "c1+c2"))]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    for name in order:
        figures = one_round(server, jdk, VARIANTS[name], args.queries, args.idle)
        results[name].append(figures)
        print(f"{name:6s} " + ", ".join(f"{k} {v:.1f}" for k, v in figures.items()), flush=True)
    keys = ["start_s", "start_cpu", "queries_s", "queries_cpu", "idle_cpu", "total_cpu"]
    medians = {name: {k: statistics.median(r[k] for r in rounds) for k in keys} for name, rounds in results.items()}
    print(f"\nmedians of {args.rounds} rounds ({args.queries} queries, {args.idle:.0f} s idle); CPU in seconds")
    print(f"{'':12s}" + "".join(f"{k:>12s}" for k in keys))
    for name, row in medians.items():
        print(f"{name:12s}" + "".join(f"{row[k]:12.1f}" for k in keys))
    print(f"{'c1 / c1+c2':12s}" + "".join(f"{medians['c1'][k] / medians['c1+c2'][k]:12.2f}" for k in keys))


if __name__ == "__main__":
    main()
