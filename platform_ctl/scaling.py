"""Day-2 `scale-out` and `scale-in`: change one group's host count while the platform serves.

scale-out: the spec's count changes; the infrastructure gains the new hosts only; base and the
group's roles converge on them only; then what reads group membership elsewhere is reconfigured
(``/etc/hosts`` and the nftables allow-lists on every other host, pg_hba on the postgres host,
Prometheus targets on the monitoring host), each by its reload, so nothing unrelated restarts.
Trino workers announce themselves to the coordinator, which keeps running.

scale-in (Trino workers): the workers leaving are drained (graceful shutdown: they finish their
tasks and exit, so no query fails), then the spec changes, their droplets go, and the membership
readers are reconfigured as above.

A run is an *operation* recorded in ``.platform/<env>/operation.json`` with its target count and
the steps it completed; a run killed or failed in the middle is finished by running the same
command again, which resumes at the first step not done, towards the recorded target (so a
repeated ``--count +1`` does not add a second host). Every step also goes to the environment's
history (platform_ctl.history).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from platform_ctl.catalogue import PHASES, base_membership_tags, membership_readers, membership_tags
from platform_ctl.engine import (
    OperationFile,
    Step,
    StepsResult,
    pending_operation,
    require_deployed,
    require_no_pending,
    run_operation,
    run_phase,
    verify_step,
)
from platform_ctl.errors import InfrastructureError, UsageError
from platform_ctl.events import Event, Reporter, discard
from platform_ctl.paths import write_text_atomic
from platform_ctl.runner import playbook_groups

if TYPE_CHECKING:
    from platform_ctl.environment import Environment
    from platform_ctl.infra import Access, Host
    from platform_ctl.spec import HostPlan, Spec

#: Groups scale-out grows. MinIO grows by one server pool per run (`--count` is the pool's size).
SCALE_OUT_GROUPS: tuple[str, ...] = ("trino_worker", "apps", "minio")
#: Groups scale-in shrinks: hosts without data, whose work can be drained first.
SCALE_IN_GROUPS: tuple[str, ...] = ("trino_worker",)
#: Playbook phases whose plays read group membership: phase -> {the group whose hosts read it: the
#: groups they read (None: every group)}. pg_hba.conf admits client groups by host (metadata),
#: Prometheus scrapes every host (monitoring), and every MinIO node's server command line lists
#: every MinIO host (storage), so a new pool restarts the whole cluster in one step.
MEMBERSHIP_READERS: dict[str, dict[str, tuple[str, ...] | None]] = membership_readers()
#: The base concerns built from the inventory's host list, re-applied on every other host (Ansible
#: also runs the tasks tagged ``always`` with them: base's preflight checks).
BASE_MEMBERSHIP_TAGS: tuple[str, ...] = base_membership_tags()
#: The parts of a phase that read group membership, run alone when the phase's hosts are all readers
#: (no new host among them): pg_hba.conf and its reload; the target files, prometheus.yml and the
#: reload. Handlers ignore tags, so what the changed files notify still runs. A phase not here, or
#: with a new host, runs whole.
MEMBERSHIP_TAGS: dict[str, tuple[str, ...]] = membership_tags()
COMMANDS = ("scale-out", "scale-in")

_COUNT = re.compile(r"([+-]?)(\d{1,3})")


def target_count(command: str, group: str, text: str, current: int) -> int:
    """The group's new count from ``--count``: ``+N``/``-N`` relative, ``N`` the new total."""
    match = _COUNT.fullmatch(text.strip())
    grow = command == "scale-out"
    sign_word, total_word = ("+N (hosts to add)", "above") if grow else ("-N (hosts to remove)", "below")
    allowed = f"allowed: {sign_word} or a new total {total_word} {current}"
    if match is None:
        raise UsageError(f"--count {text!r}: not a count; {allowed}")
    sign, number = match.group(1), int(match.group(2))
    if sign == ("-" if grow else "+"):
        other = "scale-in" if grow else "scale-out"
        raise UsageError(f"--count {text}: {command} cannot go that way (use {other}); {allowed}")
    target = current + number if sign == "+" else current - number if sign == "-" else number
    if (grow and target <= current) or (not grow and not 0 <= target < current):
        raise UsageError(f"--count {text}: {group} has {current} host(s), that makes {target}; {allowed}")
    return target


@dataclass
class Operation(OperationFile):
    """A scale run's plan and progress, kept on disk so a rerun resumes it."""

    command: str
    group: str
    before: int
    after: int
    added: list[str]
    removed: list[str]
    completed: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def resume(self, env: str) -> str:
        return f"platform-ctl {self.command} {env} {self.group}"

    @property
    def summary(self) -> str:
        hosts = self.added or self.removed
        verb = "add" if self.added else "remove"
        return f"{self.command} {self.group}: {self.before} → {self.after} hosts ({verb} {', '.join(hosts)})"


@dataclass
class ScaleResult(StepsResult):
    operation: Operation | None = None
    hosts: list[Host] = field(default_factory=list)

    @property
    def minio_restart(self) -> dict[str, float]:
        return self.restarts.get("minio", {})


def plan_operation(env: Environment, command: str, group: str, count: str | None) -> tuple[Operation, bool]:
    """The operation to run: an interrupted one of the same command and group, or a new one."""
    pending = pending_operation(env.state_dir)
    if pending is not None:
        if (pending.command, pending.data.get("group")) != (command, group):
            require_no_pending(env)
        return Operation.from_record(pending.data), True
    allowed = SCALE_OUT_GROUPS if command == "scale-out" else SCALE_IN_GROUPS
    if group not in allowed:
        raise UsageError(f"{command} {group}: not a group {command} changes; allowed: {', '.join(allowed)}")
    if count is None:
        example = "+1" if command == "scale-out" else "-1"
        raise UsageError(f"{command} {env.name} {group}: give --count (e.g. --count {example})")
    require_deployed(env, "change its size")
    after = target_count(command, group, count, env.spec.count(group))
    if group == "minio":
        _check_new_pool(env.spec, count, after - env.spec.count(group))
    if group == "trino_worker" and 0 in (env.spec.count(group), after):
        # roles/trino: the coordinator schedules work on itself exactly when there are no workers.
        raise UsageError(
            f"{command} {group} from {env.spec.count(group)} to {after}: with no workers the coordinator runs the "
            "queries itself, and switching that restarts it; allowed: counts of 1 or more on both sides "
            f"(to go to or from 0, set groups.{group}.count in the spec and run `platform-ctl deploy {env.name}`)")
    new = _spec_with_count(env, group, after)[1]
    before_names = {h.name for h in env.spec.hosts()}
    after_names = {h.name for h in new.hosts()}
    order = [h.name for h in (new.hosts() if command == "scale-out" else env.spec.hosts())]
    return Operation(command, group, env.spec.count(group), after,
                     added=[n for n in order if n not in before_names],
                     removed=[n for n in order if n not in after_names]), False


def _check_new_pool(spec: Spec, count: str, size: int) -> None:
    """MinIO grows by a server pool of ``size`` hosts: it must form erasure sets of the parity."""
    from platform_ctl.spec import ERASURE_SET_SIZES, erasure_set_size, pool_size_problem

    parity = spec.minio_parity()
    valid = [n for n in range(ERASURE_SET_SIZES.start, 33) if (erasure_set_size(n) or 0) >= 2 * parity]
    allowed = (f"allowed: +N, the size of the new server pool (pools now {list(spec.minio_pools())}): "
               f"{', '.join(f'+{n}' for n in valid[:8])}, ... (erasure sets of 4 to 16 drives, parity EC:{parity})")
    problem, set_size = pool_size_problem(size), erasure_set_size(size)
    if problem is None and set_size is not None and set_size < 2 * parity:
        problem = f"a pool of {size} hosts has erasure sets of {set_size} drives, too small for EC:{parity}"
    if problem:
        raise UsageError(f"--count {count}: MinIO grows by whole server pools, and {problem}; {allowed}")


def _spec_with_count(env: Environment, group: str, count: int) -> tuple[str, Spec]:
    """The spec file's text with the new count, and that spec validated (one-line error otherwise).

    MinIO's new hosts are a new server pool, appended to ``minio.pools``.
    """
    from platform_ctl.spec import parse_spec, with_group_count, with_minio_pools

    path = env.project.spec_path(env.name)
    text = with_group_count(path.read_text(encoding="utf-8"), path, group, count)
    if group == "minio":
        text = with_minio_pools(text, [*env.spec.minio_pools(), count - env.spec.count(group)])
    return text, parse_spec(text, path, env.name)


def _targets(phase: str, hosts: Sequence[Host | HostPlan], names: list[str], group: str) -> list[str]:
    """Of ``names``, the hosts ``phase`` has a play for; then the phase's readers of ``group``."""
    groups = playbook_groups(phase)
    chosen = [h.name for h in hosts if h.name in names and ("all" in groups or groups & set(h.groups))]
    wanted = {reader for reader, read in MEMBERSHIP_READERS.get(phase, {}).items() if read is None or group in read}
    return chosen + [h.name for h in hosts if wanted & set(h.groups) and h.name not in chosen]


class _Runner:
    """The steps of one operation, bound to the environment."""

    def __init__(self, env: Environment, op: Operation, report: Reporter) -> None:
        self.env, self.op, self.report = env, op, report
        self._access: Access | None = None

    @property
    def access(self) -> Access:
        if self._access is None:
            self._access = self.env.access(create=False)
        return self._access

    def reload(self) -> None:
        from platform_ctl.environment import Environment

        self.env = Environment.load(self.env.project, self.env.name)

    def hosts(self) -> list[Host]:
        return self.env.backend.hosts(self.env.spec)

    def playbook(self, phase: str, playbook: str, limit: list[str], tags: tuple[str, ...] = ()) -> dict[str, object]:
        return run_phase(self.env, phase, playbook, limit, self.report, tags)

    # -- steps ---------------------------------------------------------------------------------
    def write_spec(self) -> dict[str, object]:
        text, _ = _spec_with_count(self.env, self.op.group, self.op.after)
        path = self.env.project.spec_path(self.env.name)
        write_text_atomic(path, text)
        self.reload()
        return {"file": str(path.relative_to(self.env.project.root)), "key": f"groups.{self.op.group}.count",
                "from": self.op.before, "to": self.op.after}

    def infrastructure(self) -> dict[str, object]:
        if self.op.removed:
            self.env.backend.retire(self.env.spec, self.access, self.op.removed, self.report)
            return {"removed": self.op.removed}
        self.env.backend.apply(self.env.spec, self.access, self.report)
        return {"added": self.op.added}

    def inventory(self) -> dict[str, object]:
        from platform_ctl.deploy import controller_inputs
        from platform_ctl.inventory import write_inventory

        write_inventory(self.env.project, self.env.spec, self.hosts(), self.access,
                        controller_inputs(self.env, self.report))
        return {"inventory": str(self.env.inventory.relative_to(self.env.project.root))}

    def connect(self) -> dict[str, object]:
        from platform_ctl.access import wait_for_ssh

        silent = wait_for_ssh({h.name: h.public_ip for h in self.hosts() if h.name in self.op.added})
        if silent:
            raise InfrastructureError(f"no SSH answer within 120s from: {', '.join(silent)}")
        return {}

    def drain(self) -> dict[str, object]:
        live = [h.name for h in self.hosts() if h.name in self.op.removed]
        return self.playbook("drain", "ops/drain_trino_workers.yml", live) if live else {"hosts": []}

    def verify(self) -> dict[str, object]:
        return verify_step(self.env, self.report)

    @functools.cached_property
    def target(self) -> Spec:
        """The spec the operation ends with (already on disk when a resumed run had written it)."""
        if self.env.spec.count(self.op.group) == self.op.after:
            return self.env.spec
        return _spec_with_count(self.env, self.op.group, self.op.after)[1]

    def steps(self) -> list[Step]:
        op, planned = self.op, self.target.hosts()
        changing = op.added or op.removed
        others = [h.name for h in planned if h.name not in op.added]
        membership = Step("membership", f"/etc/hosts and firewall allow-lists on {_names(others)} "
                          f"(base, --tags {','.join(BASE_MEMBERSHIP_TAGS)})",
                          functools.partial(self.playbook, "membership", "base.yml", others, BASE_MEMBERSHIP_TAGS))
        steps = [Step("drain", f"graceful shutdown of Trino on {_names(op.removed)}", self.drain)] if op.removed else []
        steps += [
            Step("spec", f"set groups.{op.group}.count to {op.after}", self.write_spec),
            Step("infrastructure", f"{'create' if op.added else 'remove'} {_names(changing)}", self.infrastructure),
            Step("inventory", f"write the inventory {'with' if op.added else 'without'} {_names(changing)}",
                 self.inventory),
        ]
        if op.added:
            steps.append(Step("connect", f"wait for SSH on {_names(op.added)}", self.connect))
        for phase in PHASES:
            targets = _targets(phase, planned, op.added, op.group)
            if targets:
                tags = MEMBERSHIP_TAGS.get(phase, ()) if not set(targets) & set(op.added) else ()
                steps.append(Step(phase, f"{phase}.yml on {_names(targets)}"
                                         + (f" (--tags {','.join(tags)})" if tags else ""),
                                  functools.partial(self.playbook, phase, f"{phase}.yml", targets, tags)))
            if phase == "base":
                steps.append(membership)
        steps.append(Step("verify", "the shipped checks on every host", self.verify))
        return steps


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 4 else f"{', '.join(names[:3])} and {len(names) - 3} more"


def scale(env: Environment, command: str, group: str, count: str | None, report: Reporter = discard,
          check: bool = False) -> ScaleResult:
    """Run (or with ``check``, only plan) ``scale-out``/``scale-in`` of ``group`` to ``count``."""
    if command not in COMMANDS:
        raise UsageError(f"{command}: allowed: {', '.join(COMMANDS)}")
    op, resumed = plan_operation(env, command, group, count)
    if resumed:
        report(Event("message", phase="plan",
                     message=f"resuming the interrupted `{op.summary}` from {op.started}"
                             f" (done: {', '.join(op.completed) or 'nothing'})"))
    runner = _Runner(env, op, report)
    steps = runner.steps()
    result = ScaleResult(resumed, plan=[(s.name, s.what) for s in steps], operation=op)
    if not resumed:
        env.backend.preflight(runner.target)
    if check:
        result.check_only = True
        return result
    if not resumed:
        op.save(env.state_dir)
    run_operation(env, command, steps, op, result, report, group=group, before=op.before, after=op.after,
                  added=op.added, removed=op.removed, resumed=resumed)
    result.hosts = runner.hosts()
    return result
