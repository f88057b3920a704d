"""A role's ``set_stats`` of ``platform_notices`` reaches the playbook result (the deploy summary)."""

from __future__ import annotations

import sys
from pathlib import Path

from platform_ctl.events import Event
from platform_ctl.runner import run_playbook

PLAYBOOK = """\
- hosts: all
  gather_facts: false
  tasks:
    - name: Ask for a notice
      ansible.builtin.set_stats:
        data: {platform_notices: ["install skipped on {{ inventory_hostname }}", "said once"]}
        aggregate: true
"""


def test_notices_of_every_host_are_collected_once_each(tmp_path: Path) -> None:
    (tmp_path / "notice.yml").write_text(PLAYBOOK)
    inventory = tmp_path / "hosts"
    inventory.write_text("".join(f"{h} ansible_connection=local ansible_python_interpreter={sys.executable}\n"
                                 for h in ("mon1", "mon2")))
    events: list[Event] = []
    result = run_playbook(str(tmp_path / "notice.yml"), inventory, tmp_path / "state", events.append, "test")
    assert result.status == "successful"
    assert result.notices == ["install skipped on mon1", "said once", "install skipped on mon2"]
