"""Helpers shared by the end-to-end test modules (imported by name, like tests/integration/do_harness.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

import pytest
import requests
import trino
import urllib3
from e2e_env import Run
from minio import Minio

from platform_ctl.vault import read_vault

#: A client in a loop (queries, PUT/GET, pgbackrest check) pauses this long after each success. Back
#: to back, the loops competed for this two-core machine with the very operation under test (two or
#: three of them at once during a rotation). The outages the loops are there to see are restarts of
#: 4 s (MinIO) to 45 s (Trino), which a 2 s pace meets at least twice each, and it places an outage
#: to within 2 s, well inside CLIENT_SLACK_S (outages are measured from the last success before one
#: to the first success after it). A failure shorter than about 1 s is not counted at any pace: the
#: loop's one retry, 1 s later, succeeds. At 0.5 s the loops of the rotation of every secret ran 306
#: `pgbackrest check`s (each archives a WAL segment), 738 psql logins and 442 Iceberg queries; the
#: machine's CPU, not their number, bounded the suite.
PACE_S = 2.0


def wait_for(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    """Poll ``predicate`` every 2 s; fail the test naming ``what`` after ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(2)
    pytest.fail(f"timed out after {seconds:.0f}s waiting for {what}")


def deploy_again(deployed) -> Run:
    """`deploy` of the environment as it stands, which must succeed."""
    again = deployed.cli("deploy", deployed.env, "--json")
    assert again.rc == 0, again.stdout[-3000:] + again.stderr[-3000:]
    return again


def changed_tasks(again: Run) -> dict[str, list[str]]:
    """The hosts a deploy changed anything on, with the changed tasks (none: a no-op)."""
    changed: dict[str, list[str]] = {}
    for e in again.events:
        if e["kind"] == "host_result" and e["status"] == "changed":
            changed.setdefault(e["host"], []).append(f"{e['phase']}: {e['task']}")
    return changed


class Cluster:
    """The deployed environment's Trino (HTTPS, vault password), MinIO and PostgreSQL, as clients see them."""

    def __init__(self, deployed) -> None:
        self.deployed = deployed
        self.state = deployed.project / ".platform" / deployed.env
        self.ca = self.state / "pki" / "ca.crt"
        password = (deployed.project / ".config" / "vault" / f"{deployed.env}.pass").read_text().strip()
        self.vault = read_vault(deployed.project / "inventories" / deployed.env / "group_vars" / "all" / "vault.yml",
                                password)

    @property
    def addresses(self) -> dict[str, str]:
        """Host name -> private address, as the infrastructure last reported them (scale-out adds hosts)."""
        return self.deployed.addresses()

    def connect(self, password: str | None = None, user: str = "admin") -> trino.dbapi.Connection:
        # trust_env off: requests lets REQUESTS_CA_BUNDLE override the session's CA file.
        session = requests.Session()
        session.trust_env = False
        session.verify = str(self.ca)
        return trino.dbapi.connect(
            host=self.addresses["trino-coord1"], port=8443, user=user, http_scheme="https",
            auth=trino.auth.BasicAuthentication(user, password or self.vault[f"vault_trino_{user}_password"]),
            http_session=session, request_timeout=300)

    def query(self, sql: str, user: str = "admin") -> list[list]:
        cursor = self.connect(user=user).cursor()
        cursor.execute(sql)
        return cursor.fetchall()

    def minio(self, node: str = "minio1", timeout: float | None = None) -> Minio:
        """An S3 client of ``node`` (root credentials); with ``timeout``, one try per request, no retries."""
        http = urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca)) if timeout is None else \
            urllib3.PoolManager(cert_reqs="CERT_REQUIRED", ca_certs=str(self.ca), timeout=timeout, retries=False)
        return Minio(f"{self.addresses[node]}:9000", self.vault["vault_minio_root_user"],
                     self.vault["vault_minio_root_password"], secure=True, http_client=http)

    def psql(self, database: str, sql: str) -> str:
        done = self.deployed.exec("pg1", "runuser", "-u", "postgres", "--", "psql", "-XAtq", "-d", database, "-c", sql,
                                  check=True)
        return done.stdout.strip()


class Dagster:
    """Dagster's GraphQL API through the proxy, as the operator (or the viewer), TLS verified against the
    environment's CA."""

    LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
        __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }"""

    def __init__(self, cluster: Cluster, password: str | None = None, user: str = "operator") -> None:
        apps = sorted(h for h in cluster.addresses if h.startswith("apps"))[0]
        self.url = f"https://{cluster.addresses[apps]}:3070/graphql"
        self.auth = (user, password or cluster.vault[f"vault_dagster_{user}_password"])
        self.ca = str(cluster.ca)

    def launch(self, job: str) -> str:
        """Launch ``job`` of the example code location; its run id."""
        data = self.query(self.LAUNCH, {"params": {"selector": {
            "repositoryLocationName": "pipelines", "repositoryName": "__repository__", "jobName": job},
            "runConfigData": {}}})
        assert data["launchRun"]["__typename"] == "LaunchRunSuccess", data
        return data["launchRun"]["run"]["runId"]

    def wait(self, run_id: str, seconds: float) -> str:
        """The run's status once it ended (SUCCESS, FAILURE, CANCELED), or its last after ``seconds``."""
        deadline = time.monotonic() + seconds
        while True:
            data = self.query("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})
            status = data["runOrError"]["status"]
            if status in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() > deadline:
                return status
            time.sleep(2)

    def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        answer = requests.post(self.url, json={"query": query, "variables": variables or {}}, auth=self.auth,
                               verify=self.ca, timeout=60)
        assert answer.status_code == 200, answer.text[:500]
        body = answer.json()
        assert "errors" not in body, body["errors"]
        return body["data"]

    def runs(self, job: str) -> list[dict[str, Any]]:
        data = self.query("""query($job: String!) { runsOrError(filter: {pipelineName: $job}, limit: 50) {
            ... on Runs { results { runId status tags { key value } } } } }""", {"job": job})
        return [{"id": r["runId"], "status": r["status"], "tags": {t["key"]: t["value"] for t in r["tags"]}}
                for r in data["runsOrError"]["results"]]

    def sensor_ticks(self, sensor: str, limit: int = 5) -> list[dict[str, Any]]:
        """The sensor's newest ticks: status, timestamp (epoch s) and error message."""
        data = self.query("""query($sensor: String!, $limit: Int!) { sensorOrError(sensorSelector: {
            repositoryLocationName: "pipelines", repositoryName: "__repository__", sensorName: $sensor}) {
              ... on Sensor { sensorState { ticks(limit: $limit) { status timestamp error { message } } } } } }""",
                          {"sensor": sensor, "limit": limit})
        return data["sensorOrError"]["sensorState"]["ticks"]

    def check_results(self, run_id: str) -> dict[str, bool]:
        """The run's dbt tests (Dagster asset checks): check name -> passed."""
        data = self.query("""query($id: ID!) { logsForRun(runId: $id, limit: 5000) {
            ... on EventConnection { events { __typename
              ... on AssetCheckEvaluationEvent { evaluation { checkName success } } } } } }""", {"id": run_id})
        return {e["evaluation"]["checkName"]: e["evaluation"]["success"]
                for e in data["logsForRun"]["events"] if e["__typename"] == "AssetCheckEvaluationEvent"}


#: Slack between Trino's restart as the playbook measures it (from the coordinator's stop until
#: /v1/info says it is no longer starting, 1 s polls, and the coordinator lists its workers) and as
#: a client sees it (its own pace, timeouts and retry).
CLIENT_SLACK_S = 20


class Background:
    """A client loop on a thread: ``with`` starts it and, at the end, stops it and waits up to JOIN_S for it.

    A subclass calls ``super().__init__()`` and loops in ``_run`` until ``self._stop`` is set.
    """

    JOIN_S = 120.0

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=self.JOIN_S)


class Loop(Background):
    """Runs ``operation`` in a loop on a thread (PACE_S after each success), with one retry after a failure."""

    JOIN_S = 600.0

    def __init__(self, name: str, operation: Callable[[], object]) -> None:
        super().__init__()
        self.name, self.operation = name, operation
        self.ok = 0
        self.retried = 0
        self.failures: list[tuple[float, str]] = []  # (monotonic time, error) of failed retries

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.operation()
            except Exception:
                self.retried += 1
                time.sleep(1)
                try:
                    self.operation()
                except Exception as exc:
                    self.failures.append((time.monotonic(), f"{type(exc).__name__}: {str(exc)[:300]}"))
                    continue
            self.ok += 1
            self._stop.wait(PACE_S)


def keep_going(*loops: Loop, successes: int = 2, seconds: float = 120) -> None:
    """Wait until each loop has succeeded ``successes`` more times (the clients go on after an operation)."""
    marks = {loop.name: loop.ok for loop in loops}
    for loop in loops:
        wait_for(lambda loop=loop: loop.ok >= marks[loop.name] + successes, seconds,
                 f"{successes} more successes of {loop.name}")


def pgbackrest_check(cluster: Cluster) -> None:
    cluster.deployed.exec("pg1", "runuser", "-u", "postgres", "--", "pgbackrest", "--stanza=main", "check",
                          timeout=120, check=True)
