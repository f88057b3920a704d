"""`deploy`: validate → preflight → prepare → infrastructure → inventory → connect → playbooks → verify.

``prepare`` is the controller's own work before anything is created: the environment's CA and the
artifacts built here (MinIO from source), so a build failure costs no droplet.

Each phase records its completion in ``.platform/<env>/deploy.json``. A deploy that stopped (failed,
killed) resumes at the first phase it had not completed, as long as the spec is unchanged; a
finished deploy runs every phase again (which is how a second deploy proves it is a no-op).
``from_phase`` forces a start at a given phase; ``to_phase`` stops after one, leaving the deploy
unfinished, so the next plain deploy goes on from the phase after it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from platform_ctl import catalogue
from platform_ctl.engine import (
    DEPLOY_RECORD,
    Step,
    StepsResult,
    require_no_pending,
    run_operation,
    run_phase,
    verify_step,
)
from platform_ctl.errors import InfrastructureError, UsageError
from platform_ctl.events import Event, Reporter, discard
from platform_ctl.paths import write_text_atomic

if TYPE_CHECKING:
    from platform_ctl.environment import Environment
    from platform_ctl.infra import Access, Host
    from platform_ctl.runner import PlaybookResult
    from platform_ctl.verify import VerifyReport

#: Playbook phases in dependency order; each is ansible/playbooks/<phase>.yml (the catalogue's).
PLAYBOOK_PHASES: tuple[str, ...] = catalogue.PHASES
PHASES: tuple[str, ...] = ("prepare", "infrastructure", "inventory", "connect", *PLAYBOOK_PHASES, "verify")


@dataclass
class DeployResult(StepsResult):
    env: str = ""
    resumed_from: str | None = None
    playbooks: dict[str, PlaybookResult] = field(default_factory=dict)
    hosts: list[Host] = field(default_factory=list)
    verify: VerifyReport | None = None
    notices: list[str] = field(default_factory=list)
    #: The phase the deploy stopped after (``to_phase``), when it did not run to the end.
    stopped_after: str | None = None

    def changed_per_host(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for result in self.playbooks.values():
            for host, stats in result.stats.items():
                totals[host] = totals.get(host, 0) + stats.changed
        return totals


class PhaseState:
    """The record of which phases of the current deploy have completed (the engine's record of deploy)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, object] = json.loads(path.read_text()) if path.exists() else {}
        self.completed: list[str] = list(self.data.get("completed", []))  # type: ignore[arg-type]

    def start(self, digest: str, keep: list[str]) -> None:
        self.completed = list(keep)
        self.data = {"spec_digest": digest, "completed": self.completed, "finished": False,
                     "started": datetime.now(UTC).isoformat()}
        self._save()

    def done(self, phase: str) -> None:
        if phase not in self.completed:
            self.completed.append(phase)
        self._save()

    def finish(self) -> None:
        self.data["finished"] = True
        self.data["finished_at"] = datetime.now(UTC).isoformat()
        self._save()

    # -- the engine's Record -------------------------------------------------------------------
    def save(self, state_dir: Path) -> None:
        self._save()

    def close(self, state_dir: Path) -> None:
        self.finish()

    def _save(self) -> None:
        self.data["completed"] = self.completed
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(self.path, json.dumps(self.data, indent=2) + "\n")


def plan_phases(state: PhaseState, digest: str, from_phase: str | None,
                to_phase: str | None = None) -> tuple[list[str], str | None]:
    """Phases to run and the phase a resumed deploy starts at (None for a full run); with ``to_phase``,
    the phases up to it only."""
    for option, phase in (("--from", from_phase), ("--to", to_phase)):
        if phase is not None and phase not in PHASES:
            raise UsageError(f"{option} {phase}: no such phase; allowed: {', '.join(PHASES)}")
    todo, resumed = list(PHASES), None
    if from_phase is not None:
        todo, resumed = list(PHASES[PHASES.index(from_phase):]), from_phase
    elif state.data and not state.data.get("finished") and state.data.get("spec_digest") == digest:
        left = [p for p in PHASES if p not in state.completed]
        if left and len(left) < len(PHASES):
            todo, resumed = left, left[0]
    if to_phase is not None:
        kept = [p for p in todo if PHASES.index(p) <= PHASES.index(to_phase)]
        if not kept:
            raise UsageError(f"--to {to_phase}: this deploy starts at {todo[0]}, after it (completed by the "
                             "previous run); nothing was changed")
        todo = kept
    return todo, resumed


def deploy(
    env: Environment,
    report: Reporter = discard,
    from_phase: str | None = None,
    to_phase: str | None = None,
) -> DeployResult:
    """Bring the environment to its spec (up to ``to_phase``); raise a PlatformCtlError at the first failing
    phase."""
    from platform_ctl.spec import spec_digest

    # A deploy would restart what a scale-in drained, or converge half of a scale-out's plan.
    require_no_pending(env, then="deploy")
    digest = spec_digest(env.spec)
    state = PhaseState(env.state_dir / DEPLOY_RECORD)
    todo, resumed = plan_phases(state, digest, from_phase, to_phase)
    skipped = [p for p in PHASES[:PHASES.index(todo[0])] if p not in todo]
    # Report preflight problems before creating anything in the state directory.
    report(Event("phase_start", phase="preflight"))
    env.backend.preflight(env.spec)
    _ensure_vault(env)
    report(Event("phase_done", phase="preflight"))
    state.start(digest, keep=skipped)
    result = DeployResult(resumed is not None, skipped=list(skipped), env=env.name, resumed_from=resumed)
    for phase in skipped:
        report(Event("phase_skip", phase=phase, message="completed by the previous run"))
    access = env.access(create=True)
    steps = [Step(phase, "", functools.partial(_run_phase, env, phase, access, report, result))
             for phase in todo]
    finishes = todo[-1] == PHASES[-1]
    run_operation(env, "deploy", steps, state, result, report, close=finishes, phases=todo,
                  resumed_from=resumed, spec_digest=digest)
    if not finishes:
        result.stopped_after = todo[-1]
        following = PHASES[PHASES.index(todo[-1]) + 1]
        said = f"stopped after {todo[-1]} (--to): `platform-ctl deploy {env.name}` goes on from {following}"
        report(Event("message", phase=todo[-1], message=said))
    result.hosts = result.hosts or env.backend.hosts(env.spec)
    return result


def _ensure_vault(env: Environment) -> Path | None:
    from platform_ctl.vault import ensure_vault

    ensure_vault(env.project, env.name)
    return env.vault_password_file()


def controller_inputs(env: Environment, report: Reporter = discard) -> dict[str, object]:
    """Inventory variables made on the controller: the CA's paths and the built artifacts.

    Idempotent and cheap once done (a cached artifact costs a checksum), so the inventory phase
    calls it again rather than trusting a previous run's record.
    """
    from platform_ctl.artifacts import artifacts_for, ensure
    from platform_ctl.pki import ensure_ca

    def say(message: str) -> None:
        report(Event("message", phase="prepare", message=message))

    ca = ensure_ca(env.state_dir, env.name)
    built = {a.name: ensure(a, say).as_inventory() for a in artifacts_for(env.spec)}
    return {"platform_pki": ca.as_inventory(), "platform_artifacts": built}


def _run_phase(env: Environment, phase: str, access: Access, report: Reporter,
               result: DeployResult) -> dict[str, object]:
    """Run one phase of the deploy; what it did, for history."""
    if phase == "prepare":
        inputs = controller_inputs(env, report)
        return {"artifacts": sorted(inputs["platform_artifacts"])}  # type: ignore[call-overload]
    if phase == "infrastructure":
        result.hosts = env.backend.apply(env.spec, access, report)
        return {"hosts": [h.name for h in result.hosts]}
    if phase == "inventory":
        from platform_ctl.inventory import write_inventory

        result.hosts = result.hosts or env.backend.hosts(env.spec)
        write_inventory(env.project, env.spec, result.hosts, access, controller_inputs(env, report))
        return {"inventory": str(env.inventory.relative_to(env.project.root))}
    if phase == "connect":
        from platform_ctl.access import wait_for_ssh

        result.hosts = result.hosts or env.backend.hosts(env.spec)
        silent = wait_for_ssh({h.name: h.public_ip for h in result.hosts})
        if silent:
            raise InfrastructureError(f"no SSH answer within 120s from: {', '.join(silent)}")
        return {}
    if phase in PLAYBOOK_PHASES:
        details = run_phase(env, phase, f"{phase}.yml", None, report)
        result.playbooks[phase] = details["result"]  # type: ignore[assignment]
        for notice in result.playbooks[phase].notices:
            result.notices.append(notice)
            report(Event("message", phase=phase, message=f"notice: {notice}", data={"notice": notice}))
        return details
    details = verify_step(env, report)
    result.verify = details["report"]  # type: ignore[assignment]
    return details


@dataclass
class CheckResult:
    """What ``deploy --check`` found: the infrastructure plan and Ansible's check/diff per playbook."""

    env: str
    infrastructure: str
    infrastructure_changes: list[tuple[str, str]] = field(default_factory=list)
    playbooks: dict[str, PlaybookResult] = field(default_factory=dict)
    playbooks_skipped: str = ""


def check(env: Environment, report: Reporter = discard) -> CheckResult:
    """Show what a deploy would change, changing nothing on the infrastructure or the hosts.

    The controller may gain what a plan needs (the environment's SSH key, the toolchain build).
    Ansible's check runs only where the hosts already exist and answer SSH.
    """
    from platform_ctl.runner import run_playbook

    report(Event("phase_start", phase="preflight"))
    env.backend.preflight(env.spec)
    report(Event("phase_done", phase="preflight"))
    access = env.access(create=True)
    report(Event("phase_start", phase="infrastructure"))
    summary = env.backend.plan(env.spec, access, report)
    result = CheckResult(env.name, summary.line(), summary.changes)
    report(Event("phase_done", phase="infrastructure"))
    hosts = env.backend.status(env.spec)
    vault = env.vault_password_file()
    if not env.inventory.exists() or not all(h.state == "running" and h.ssh for h in hosts):
        result.playbooks_skipped = "hosts are not all deployed and reachable yet: no Ansible check"
        return result
    if not env.project.vault_path(env.name).exists():
        result.playbooks_skipped = "no vault yet (deploy creates it): no Ansible check"
        return result
    for phase in PLAYBOOK_PHASES:
        report(Event("phase_start", phase=phase))
        result.playbooks[phase] = run_playbook(f"{phase}.yml", env.inventory, env.state_dir, report, phase,
                                               vault_password_file=vault, check=True)
        report(Event("phase_done", phase=phase))
    return result
