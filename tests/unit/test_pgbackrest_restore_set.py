"""roles/postgresql's pgbackrest_restore_set: which backup a restore to a time can start from.

The shapes are those pgBackRest's `info --output=json` and PostgreSQL's timeline history files have
(checked against pgBackRest on a deployed pg1). The case that made this module: a scheduled backup
ran on timeline 2 after the drop a point-in-time restore undid; that restore made timeline 3,
branching from 2 before the backup, so recovery along timeline 3 cannot start from it.
"""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from pathlib import Path

import pytest

MODULE = Path(__file__).resolve().parents[2] / "roles" / "postgresql" / "library" / "pgbackrest_restore_set.py"
spec = importlib.util.spec_from_file_location("pgbackrest_restore_set", MODULE)
assert spec is not None
assert spec.loader is not None
restore_set = importlib.util.module_from_spec(spec)
spec.loader.exec_module(restore_set)

HISTORY_3 = "1\t0/3000000\tno recovery target specified\n\n2\t0/6000A60\tbefore 2026-12-07 00:59:58.120000+00\n"


def _backup(label: str, timeline: int, start: str, stop: str, stopped: str) -> dict:
    segment = f"{timeline:08X}00000000{int(start.split('/')[1], 16) >> 24:08X}"
    return {"label": label, "type": "full" if label.endswith("F") else "diff",
            "archive": {"start": segment, "stop": segment},
            "lsn": {"start": start, "stop": stop},
            "timestamp": {"start": int(datetime.fromisoformat(stopped).timestamp()) - 5,
                          "stop": int(datetime.fromisoformat(stopped).timestamp())}}


FULL = _backup("20261207-005900F", 2, "0/5000028", "0/5000138", "2026-12-07T00:59:10+00:00")
DIFF_ABANDONED = _backup("20261207-005900F_20261207-010000D", 2, "0/7000028", "0/7000100", "2026-12-07T01:00:08+00:00")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_history_file_gives_each_ancestor_and_its_branch_point():
    assert restore_set.switchpoints(HISTORY_3) == {1: 0x3000000, 2: 0x6000A60}
    assert restore_set.lsn("16/B374D848") == (0x16 << 32) | 0xB374D848


def test_a_backup_of_a_branch_a_restore_abandoned_is_never_chosen():
    chosen, off = restore_set.choose([FULL, DIFF_ABANDONED], 3, restore_set.switchpoints(HISTORY_3),
                                     at("2026-12-07T01:01:06+00:00"))
    assert chosen is FULL
    assert off == [DIFF_ABANDONED["label"]]
    latest, _ = restore_set.choose([FULL, DIFF_ABANDONED], 3, restore_set.switchpoints(HISTORY_3), None)
    assert latest is FULL


def test_the_newest_backup_that_ended_by_the_target_on_the_followed_timeline_is_chosen():
    newer = _backup("20261207-005900F_20261207-010200D", 3, "0/8000028", "0/8000100", "2026-12-07T01:02:00+00:00")
    backups = [FULL, DIFF_ABANDONED, newer]
    switches = restore_set.switchpoints(HISTORY_3)
    assert restore_set.choose(backups, 3, switches, at("2026-12-07T01:03:00+00:00"))[0] is newer
    assert restore_set.choose(backups, 3, switches, at("2026-12-07T01:01:59+00:00"))[0] is FULL
    assert restore_set.choose(backups, 3, switches, None)[0] is newer


@pytest.mark.parametrize(("stop_lsn", "usable"), [("0/6000A60", True), ("0/6000A61", False)])
def test_an_ancestors_backup_counts_only_if_it_ended_by_the_branch_point(stop_lsn: str, usable: bool):
    backup = _backup("20261207-005900F", 2, "0/6000028", stop_lsn, "2026-12-07T00:59:10+00:00")
    assert restore_set.on_history(backup, 3, restore_set.switchpoints(HISTORY_3)) is usable


def test_nothing_before_the_first_backup():
    chosen, off = restore_set.choose([FULL], 3, restore_set.switchpoints(HISTORY_3), at("2026-12-07T00:59:09+00:00"))
    assert chosen is None
    assert off == []
