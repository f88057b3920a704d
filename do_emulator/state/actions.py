"""Actions: the global store the provider polls (``GET /v2/actions/{id}``) for every droplet and volume action."""

from __future__ import annotations

import copy

from do_emulator import catalogue
from do_emulator.state.core import Json, not_found, now
from do_emulator.state.store import Store


class Actions(Store):
    """The account's actions, each owned by the droplet or volume it acts on (``_owner``)."""

    # -- actions ---------------------------------------------------------------------------------
    def new_action(self, kind: str, resource_type: str, resource_id: int | None, region: str,
                   done: bool = True, owner: str = "") -> Json:
        """An action in the global store; ``done`` completes it at once (else :meth:`finish_action`)."""
        action_id = self._next("action")
        stamp = now()
        action = {
            "id": action_id, "status": "completed" if done else "in-progress", "type": kind,
            "started_at": stamp, "completed_at": stamp if done else None,
            "resource_id": resource_id, "resource_type": resource_type,
            "region": copy.deepcopy(catalogue.REGIONS.get(region)), "region_slug": region, "_owner": owner,
        }
        self.actions[str(action_id)] = action
        self.dirty = True
        return action

    def finish_action(self, action_id: int, ok: bool = True) -> None:
        action = self.actions.get(str(action_id))
        if action is None or action["completed_at"] is not None:
            return
        action["status"] = "completed" if ok else "errored"
        action["completed_at"] = now()
        self.dirty = True

    def get_action(self, action_id: str) -> Json:
        action = self.actions.get(action_id)
        if action is None:
            raise not_found()
        return action

    def actions_of(self, owner: str) -> list[Json]:
        return [a for a in self.actions.values() if a.get("_owner") == owner]

    def _pending(self, owner: str) -> bool:
        return any(a["completed_at"] is None for a in self.actions_of(owner))
