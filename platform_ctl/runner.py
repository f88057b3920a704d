"""The one door to Ansible: playbooks run through ansible-runner, its events become progress events.

Full logs (stdout and the JSON event stream) land in ``.platform/<env>/logs/<run id>/``.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from platform_ctl.errors import PlaybookFailed
from platform_ctl.events import Event, Reporter
from platform_ctl.paths import COLLECTION_ROOT, control_dir

ANSIBLE_DIR = COLLECTION_ROOT / "ansible"
PLAYBOOK_DIR = ANSIBLE_DIR / "playbooks"
ANSIBLE_CFG = ANSIBLE_DIR / "ansible.cfg"
VAULT_FROM_ENV = ANSIBLE_DIR / "vault-password-from-env"


@dataclass
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0


@dataclass
class PlaybookResult:
    playbook: str
    status: str
    rc: int
    log_dir: Path
    stats: dict[str, HostStats] = field(default_factory=dict)
    failures: list[tuple[str, str, str]] = field(default_factory=list)
    #: What the roles asked to be shown in the summary: ``set_stats`` of ``platform_notices`` (a list
    #: of sentences, aggregated over the hosts), e.g. an install skipped on purpose.
    notices: list[str] = field(default_factory=list)
    #: Every ``set_stats`` value of the run (aggregated over the hosts), ``platform_notices`` included.
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> int:
        return sum(s.changed for s in self.stats.values())


def _failure_message(res: dict[str, Any]) -> str:
    parts = [str(res.get("msg") or "").strip()]
    for key in ("stderr", "module_stderr", "stdout"):
        text = str(res.get(key) or "").strip()
        if text and text not in parts[0]:
            parts.append(text.splitlines()[-1])
            break
    return " | ".join(p for p in parts if p).replace("\n", " ")[:500] or "failed"


def mitogen_strategy_dir() -> str:
    """Where ansible_mitogen's strategy plugins live in this virtualenv."""
    import ansible_mitogen

    return str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")


def ansible_env(
    state_dir: Path,
    vault_password_file: Path | None,
    config: Path = ANSIBLE_CFG,
) -> dict[str, str]:
    """Environment for any Ansible process of this environment (playbooks, inventory, testinfra)."""
    env = {
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_ROLES_PATH": str(COLLECTION_ROOT / "roles"),
        "ANSIBLE_STRATEGY_PLUGINS": mitogen_strategy_dir(),
        # Facts are cached per environment, so a deploy of one never reads another's facts.
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(state_dir / "facts"),
        "ANSIBLE_LOCAL_TEMP": str(state_dir / "tmp"),
        # SSH masters per environment, in a directory short enough for a socket path.
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(control_dir(state_dir)),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        # The Ansible of this virtualenv, also when platform-ctl is called by its full path.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    if os.environ.get("PLATFORM_VAULT_PASSWORD"):
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(VAULT_FROM_ENV)
    elif vault_password_file is not None:
        env["ANSIBLE_VAULT_PASSWORD_FILE"] = str(vault_password_file)
    return env


def run_playbook(
    playbook: str,
    inventory: Path,
    state_dir: Path,
    report: Reporter,
    phase: str,
    vault_password_file: Path | None = None,
    extravars: dict[str, Any] | None = None,
    limit: str | None = None,
    config: Path = ANSIBLE_CFG,
    check: bool = False,
    tags: tuple[str, ...] = (),
) -> PlaybookResult:
    """Run ``ansible/playbooks/<playbook>`` against ``inventory``; raise PlaybookFailed on failure.

    ``limit`` and ``tags`` are Ansible's: the hosts to run on, and the tagged tasks to run only.
    """
    import ansible_runner  # heavy import, kept out of --help

    private = state_dir / "runner"
    logs = state_dir / "logs"
    for d in (private, logs, state_dir / "facts", state_dir / "tmp"):
        d.mkdir(parents=True, exist_ok=True)
    stats: dict[str, HostStats] = {}
    failures: list[tuple[str, str, str]] = []
    notices: list[str] = []
    stats_data: dict[str, Any] = {}

    def on_event(ev: dict[str, Any]) -> bool:
        name = ev.get("event", "")
        data = ev.get("event_data", {})
        host = data.get("host", "")
        task = data.get("task", "")
        if name == "playbook_on_task_start":
            report(Event("task", phase=phase, task=data.get("task", "")))
        elif name in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"):
            res = data.get("res", {}) or {}
            if name == "runner_on_ok":
                status = "changed" if res.get("changed") else "ok"
            elif name == "runner_on_failed":
                status = "ignored" if data.get("ignore_errors") else "failed"
            else:
                status = name.removeprefix("runner_on_")
            if status in ("failed", "unreachable"):
                failures.append((host, task, _failure_message(res)))
            report(Event("host_result", phase=phase, host=host, task=task, status=status))
        elif name == "playbook_on_stats":
            for key, attr in (("ok", "ok"), ("changed", "changed"), ("failures", "failed"),
                              ("dark", "unreachable"), ("skipped", "skipped")):
                for h, n in (data.get(key) or {}).items():
                    setattr(stats.setdefault(h, HostStats()), attr, n)
            stats_data.update(data.get("artifact_data") or {})
            for notice in stats_data.get("platform_notices") or []:
                if notice not in notices:
                    notices.append(str(notice))
        return True

    cmdline = ["--check", "--diff"] if check else []
    if tags:
        cmdline.append("--tags=" + ",".join(tags))
    result = ansible_runner.run(
        private_data_dir=str(private),
        artifact_dir=str(logs),
        playbook=str(PLAYBOOK_DIR / playbook),
        inventory=str(inventory),
        envvars=ansible_env(state_dir, vault_password_file, config),
        extravars=extravars or {},
        limit=limit,
        cmdline=" ".join(cmdline) or None,
        event_handler=on_event,
        quiet=True,
        rotate_artifacts=20,
        suppress_env_files=True,
    )
    log_dir = Path(result.config.artifact_dir)
    outcome = PlaybookResult(playbook, result.status, result.rc, log_dir, stats, failures, notices, stats_data)
    report(Event("stats", phase=phase, data={"stats": {h: vars(s) for h, s in stats.items()}}))
    if result.rc != 0 or result.status != "successful":
        if not failures:
            # No task failed: Ansible stopped before or between tasks (a YAML or template error).
            lines = (log_dir / "stdout").read_text(errors="replace").strip().splitlines() \
                if (log_dir / "stdout").exists() else []
            errors = [line for line in lines if line.startswith(("[ERROR]", "ERROR!"))]
            reason = " ".join(errors[:1] + lines[lines.index(errors[0]) + 1:][:1]) if errors else " ".join(lines[-3:])
            failures.append(("-", "-", reason or f"ansible-playbook exited {result.rc}"))
        raise PlaybookFailed(playbook, failures, str(log_dir / "stdout"))
    return outcome


def playbook_groups(phase: str) -> set[str]:
    """The host patterns of a phase playbook's plays (group names; ``all`` for every host), split at ``,``
    or ``:`` as Ansible does."""
    plays = yaml.safe_load((PLAYBOOK_DIR / f"{phase}.yml").read_text()) or []
    return {pattern.strip() for play in plays for pattern in re.split(r"[,:]", str(play.get("hosts", "")))}
