#!/usr/bin/python
"""Ansible module: the pgBackRest backup set a restore can start from.

Recovery follows the newest timeline in the archive (recovery_target_timeline 'latest'). A backup
taken on a timeline that a later restore abandoned (a scheduled backup that ran between the drop
and its point-in-time restore, say) is not on that timeline's history: PostgreSQL refuses to start
from it ("requested timeline is not a child of this server's history"). pgBackRest picks a set by
its stop time alone, so this module picks it instead: the newest backup that ended before the
target, whose timeline is the newest one or an ancestor of it that the backup ended on before the
newest timeline branched off. It changes nothing: `info` and `archive-get` of history files only.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: pgbackrest_restore_set
short_description: Choose the pgBackRest backup set a restore to a target starts from.
options:
  stanza: {type: str, required: true, description: The pgBackRest stanza.}
  target:
    type: str
    default: ''
    description: "Recovery target time (2026-11-26 01:30:00.000000+00); '' for the end of the archive."
"""

RETURN = r"""
set: {type: str, description: "Label of the chosen backup set; '' when none can reach the target."}
timeline: {type: int, description: The newest timeline in the archive, the one recovery follows.}
message: {type: str, description: Why no set can reach the target, when set is ''.}
not_on_history: {type: list, description: Labels of backups left out because a restore abandoned their timeline.}
"""

import json
import os
import subprocess
import tempfile
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule


def lsn(text: str) -> int:
    """A PostgreSQL LSN (``16/B374D848``) as an integer."""
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def switchpoints(history: str) -> dict[int, int]:
    """Each ancestor timeline of a ``.history`` file and the LSN where its child branched off."""
    points: dict[int, int] = {}
    for line in history.splitlines():
        fields = line.split()
        if len(fields) >= 2 and fields[0].isdigit():
            points[int(fields[0])] = lsn(fields[1])
    return points


def backup_timeline(backup: dict) -> int:
    return int(backup["archive"]["start"][:8], 16)


def on_history(backup: dict, timeline: int, switches: dict[int, int]) -> bool:
    """Whether recovery along ``timeline`` can start from ``backup``: it was taken on that timeline,
    or on an ancestor and ended (reached consistency) before the branch point."""
    own = backup_timeline(backup)
    if own == timeline:
        return True
    return own in switches and lsn(backup["lsn"]["stop"]) <= switches[own]


def choose(backups: list[dict], timeline: int, switches: dict[int, int],
           target: datetime | None) -> tuple[dict | None, list[str]]:
    """The newest backup that recovery along ``timeline`` can start from and that ended by ``target``
    (pgBackRest lists backups oldest first), and the labels left out as off that timeline's history."""
    off = [b["label"] for b in backups if not on_history(b, timeline, switches)]
    usable = [b for b in backups if b["label"] not in off
              and (target is None or b["timestamp"]["stop"] <= target.timestamp())]
    return (usable[-1] if usable else None), off


def _pgbackrest(stanza: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["pgbackrest", f"--stanza={stanza}", *argv], capture_output=True, text=True, check=False)


def newest_timeline(stanza: str, archive_max: int, workdir: str) -> tuple[int, str]:
    """The newest timeline whose history file is in the archive (PostgreSQL probes upward the same
    way), starting from the newest one with a WAL segment; and that history file's text."""
    timeline, history = archive_max, ""
    while True:
        path = os.path.join(workdir, "history")
        done = _pgbackrest(stanza, "archive-get", f"{timeline + 1:08X}.history", path)
        if done.returncode != 0:
            break
        timeline += 1
        with open(path, encoding="ascii") as text:
            history = text.read()
    if not history and timeline > 1:
        path = os.path.join(workdir, "history")
        done = _pgbackrest(stanza, "archive-get", f"{timeline:08X}.history", path)
        if done.returncode != 0:
            raise RuntimeError(f"the archive holds WAL of timeline {timeline} but not {timeline:08X}.history: "
                               f"{done.stderr.strip() or done.stdout.strip()}")
        with open(path, encoding="ascii") as text:
            history = text.read()
    return timeline, history


def main() -> None:
    module = AnsibleModule(
        argument_spec={"stanza": {"type": "str", "required": True}, "target": {"type": "str", "default": ""}},
        supports_check_mode=True,
    )
    stanza, target_text = module.params["stanza"], module.params["target"].strip()
    try:
        target = datetime.fromisoformat(target_text) if target_text else None
    except ValueError:
        module.fail_json(msg=f"target {target_text!r} is not a time like 2026-11-26 01:30:00.000000+00")
    if target is not None and target.tzinfo is None:
        module.fail_json(msg=f"target {target_text!r} has no UTC offset")
    info = _pgbackrest(stanza, "--output=json", "info")
    if info.returncode != 0:
        module.fail_json(msg=f"pgbackrest info failed: {info.stderr.strip() or info.stdout.strip()}")
    repo = json.loads(info.stdout)[0]
    backups = repo.get("backup", [])
    segments = [a["max"] for a in repo.get("archive", []) if a.get("max")]
    archive_max = max((int(s[:8], 16) for s in segments), default=1)
    with tempfile.TemporaryDirectory() as workdir:
        try:
            timeline, history = newest_timeline(stanza, archive_max, workdir)
        except RuntimeError as error:
            module.fail_json(msg=str(error))
    chosen, off = choose(backups, timeline, switchpoints(history), target)
    message = ""
    if chosen is None:
        on = [b for b in backups if b["label"] not in off]
        ended = (datetime.fromtimestamp(on[0]["timestamp"]["stop"], timezone.utc).isoformat() if on else "")
        message = (f"no backup that recovery along timeline {timeline} can start from ended by {target_text}"
                   + (f": the earliest such backup ended at {ended}" if on else ": the repository holds none")
                   + (f" (left out, on timelines a restore abandoned: {', '.join(off)})" if off else ""))
    module.exit_json(changed=False, set=chosen["label"] if chosen else "", timeline=timeline,
                     message=message, not_on_history=off)


if __name__ == "__main__":
    main()
