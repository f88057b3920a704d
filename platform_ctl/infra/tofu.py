"""The one module that runs OpenTofu (or Terraform): init, plan, apply, output and state commands.

Every command that has a machine-readable mode runs with ``-json``; its lines become progress
events (a droplet being created, still creating after 10s, created) and its diagnostics become one
:class:`InfrastructureError` line. A provider's API error is recognised by its HTTP status and
turned into a message that says what to do: a 401 (token), a 422 (the API refused a value) and a
429 (rate limited). A 429 is retried: the provider built here (1.22.2) does not retry (its godo
predates retries), so ``apply`` backs off and plans again the way later providers do inside the
request (1, 2, 4, 8 s; 4 retries).
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from platform_ctl.errors import InfrastructureError, PlatformCtlError, PreflightError
from platform_ctl.events import Event, Reporter, discard
from platform_ctl.infra.hosts import PlanSummary
from platform_ctl.infra.toolchain import Toolchain

PHASE = "infrastructure"
#: Retries of a rate-limited plan/apply, and the first backoff (doubling), as godo's retry client.
RATE_LIMIT_RETRIES = 4
RATE_LIMIT_BACKOFF_S = 1.0

_HTTP_ERROR = re.compile(r"(?P<method>GET|POST|PUT|PATCH|DELETE) (?P<url>\S+): (?P<status>\d{3})\s+(?P<message>.*)")
_KEY = re.compile(r'\["([^"]+)"\]')
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass(frozen=True)
class Diagnostic:
    severity: str
    summary: str
    detail: str = ""
    address: str = ""

    @property
    def text(self) -> str:
        return " ".join(f"{self.summary} {self.detail}".split())


class RateLimited(InfrastructureError):
    """The API answered 429 (after the CLI's own retries, when raised to a caller)."""


def resource_host(address: str) -> str:
    """The host a resource address belongs to (its last for_each key), or "" for shared ones."""
    keys = _KEY.findall(address)
    return keys[-1] if keys and "droplet_group" not in keys[-1] else ""


def classify(diagnostics: list[Diagnostic], stderr: str, command: str) -> PlatformCtlError:
    """One clear message for a failed command, naming the API's answer when there was one."""
    errors = [d for d in diagnostics if d.severity == "error"] or [Diagnostic("error", stderr.strip()[-600:])]
    for diag in errors:
        match = _HTTP_ERROR.search(diag.text)
        if match is None:
            continue
        status, message = int(match["status"]), match["message"].strip()
        message = re.sub(r"^\(request \"[^\"]*\"\)\s*", "", message)
        what = f"{match['method']} {re.sub(r'^https?://[^/]+', '', match['url'])}"
        where = f" ({diag.address})" if diag.address else ""
        if status == 401:
            return PreflightError(
                f"DigitalOcean refused the API token (401 {message}) at {what}: set DIGITALOCEAN_TOKEN to a "
                "valid token with write scope"
            )
        if status == 429:
            return RateLimited(f"DigitalOcean rate limit (429 {message}) at {what}{where}: still limited after "
                               f"{RATE_LIMIT_RETRIES} retries; wait a minute and deploy again")
        if status == 422:
            return InfrastructureError(f"DigitalOcean refused {what}{where} (422): {message}; fix the value in "
                                       "the environment's platform.yml")
        return InfrastructureError(f"DigitalOcean answered {status} to {what}{where}: {message}")
    first = errors[0]
    where = f" ({first.address})" if first.address else ""
    return InfrastructureError(f"{command} failed{where}: {first.text}")


class Tofu:
    """OpenTofu in one working directory, with the environment variables of one environment."""

    def __init__(self, toolchain: Toolchain, workdir: Path, env: Mapping[str, str],
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.toolchain = toolchain
        self.workdir = workdir
        self.env = {**env, **toolchain.environment()}
        self.sleep = sleep

    # -- running ---------------------------------------------------------------------------------
    def _popen(self, args: list[str]) -> subprocess.Popen[str]:
        try:
            return subprocess.Popen([str(self.toolchain.binary), *args], cwd=self.workdir, env=self.env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as exc:
            raise PreflightError(f"cannot run {self.toolchain.binary}: {exc}") from exc

    def _stream(self, args: list[str], report: Reporter) -> Iterator[dict[str, object]]:
        """Run a ``-json`` command, yield its messages; raise a classified error if it fails."""
        proc = self._popen(args)
        stderr: list[str] = []
        reader = threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True)
        reader.start()
        diagnostics: list[Diagnostic] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except json.JSONDecodeError:
                stderr.append(line)
                continue
            if message.get("type") == "diagnostic":
                diag = message.get("diagnostic") or {}
                diagnostics.append(Diagnostic(str(diag.get("severity", "")), str(diag.get("summary", "")),
                                              str(diag.get("detail", "")), str(diag.get("address", ""))))
            _report(message, report)
            yield message
        code = proc.wait()
        reader.join()
        if code != 0:
            raise classify(diagnostics, "".join(stderr), f"{self.toolchain.flavour} {args[0]}")

    def _run(self, args: list[str]) -> str:
        """Run a command without -json; return stdout or raise with its stderr."""
        proc = self._popen(args)
        out, err = proc.communicate()
        if proc.returncode != 0:
            raise classify([], _ANSI.sub("", err or out), f"{self.toolchain.flavour} {' '.join(args[:2])}")
        return out

    # -- commands --------------------------------------------------------------------------------
    def init(self, report: Reporter = discard) -> None:
        # -upgrade: the mirror holds only the pinned build, and a rebuilt cache must not leave a
        # lock file naming the previous build's checksum.
        for _ in self._stream(["init", "-input=false", "-upgrade", "-json"], report):
            pass

    def plan(self, report: Reporter = discard, out: Path | None = None, destroy: bool = False,
             refresh: bool = True) -> PlanSummary:
        args = ["plan", "-input=false", "-json", "-lock-timeout=60s"]
        args += [f"-out={out}"] if out else []
        args += ["-destroy"] if destroy else []
        args += [] if refresh else ["-refresh=false"]
        return self._retrying(lambda: _summarise(self._stream(args, report)), report)

    def apply(self, plan_file: Path, report: Reporter = discard) -> None:
        for _ in self._stream(["apply", "-input=false", "-json", "-lock-timeout=60s", str(plan_file)], report):
            pass

    def plan_and_apply(self, plan_file: Path, report: Reporter = discard, destroy: bool = False) -> PlanSummary:
        """Plan, then apply exactly that plan; a rate-limited apply plans again after a backoff."""

        def attempt() -> PlanSummary:
            summary = _summarise(self._stream(
                ["plan", "-input=false", "-json", "-lock-timeout=60s", f"-out={plan_file}",
                 *(["-destroy"] if destroy else [])], report))
            if not summary.empty:
                self.apply(plan_file, report)
            return summary

        return self._retrying(attempt, report)

    def _retrying(self, attempt: Callable[[], PlanSummary], report: Reporter) -> PlanSummary:
        delay = RATE_LIMIT_BACKOFF_S
        for retry in range(RATE_LIMIT_RETRIES + 1):
            try:
                return attempt()
            except RateLimited:
                if retry == RATE_LIMIT_RETRIES:
                    raise
                report(Event("message", phase=PHASE,
                             message=f"DigitalOcean rate limit (429): retrying in {delay:.0f}s "
                                     f"({retry + 1}/{RATE_LIMIT_RETRIES})"))
                self.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def output(self) -> dict[str, object]:
        raw = json.loads(self._run(["output", "-json"]) or "{}")
        return {name: value.get("value") for name, value in raw.items()}

    def state_list(self) -> list[str]:
        proc = self._popen(["state", "list"])
        out, err = proc.communicate()
        if proc.returncode != 0:
            if "No state file was found" in err:
                return []
            raise classify([], err, f"{self.toolchain.flavour} state list")
        return out.split()

    def state_mv(self, source: str, destination: str) -> None:
        self._run(["state", "mv", "-lock-timeout=60s", source, destination])

    def state_rm(self, addresses: list[str]) -> None:
        if addresses:
            self._run(["state", "rm", "-lock-timeout=60s", *addresses])


def _summarise(messages: Iterator[dict[str, object]]) -> PlanSummary:
    summary = PlanSummary()
    for message in messages:
        kind = message.get("type")
        if kind == "planned_change":
            change = message.get("change") or {}
            assert isinstance(change, dict)
            resource = change.get("resource") or {}
            summary.changes.append((str(change.get("action")), str(resource.get("addr", ""))))
        elif kind == "change_summary":
            counts = message.get("changes") or {}
            assert isinstance(counts, dict)
            summary.add, summary.change, summary.remove = (int(counts.get(k, 0)) for k in ("add", "change", "remove"))
    return summary


def _report(message: dict[str, object], report: Reporter) -> None:
    """Resource progress as the same events Ansible's tasks give: task started, host result."""
    kind = str(message.get("type", ""))
    hook = message.get("hook") or {}
    if not isinstance(hook, dict):
        return
    resource = hook.get("resource") or {}
    address = str(resource.get("addr", "")) if isinstance(resource, dict) else ""
    host = resource_host(address) or "infra"
    action = str(hook.get("action", ""))
    if kind == "apply_start":
        report(Event("task", phase=PHASE, host=host, task=f"{action} {address}"))
    elif kind == "apply_progress":
        report(Event("task", phase=PHASE, host=host,
                     task=f"{action} {address} ({hook.get('elapsed_seconds', 0)}s)"))
    elif kind == "apply_complete":
        report(Event("host_result", phase=PHASE, host=host, task=f"{action} {address}", status="changed"))
    elif kind == "apply_errored":
        report(Event("host_result", phase=PHASE, host=host, task=f"{action} {address}", status="failed"))
