"""The account's store: its collections and counters, saved to and loaded from JSON.

Each kind of resource adds its operations in its own module, as a subclass of the one before
(:mod:`.actions`, :mod:`.tags`, :mod:`.keys`, :mod:`.projects`, :mod:`.vpcs`, :mod:`.volumes`,
:mod:`.droplets`, :mod:`.firewalls`); :class:`do_emulator.state.State` is the last of them. All of
them keep their records here, so one JSON file holds the whole account.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from pathlib import Path
from typing import Self

from do_emulator.state.core import VOLUME_LIMIT, Json

#: The collections saved, each a dict id -> record.
COLLECTIONS = ("droplets", "volumes", "vpcs", "firewalls", "keys", "tags", "projects", "actions")


class Store:
    """One DigitalOcean account's records. Not thread-safe: the server holds one lock around every call.

    Args:
        droplet_limit: the account's droplet limit (``--droplet-limit``).
        auto_activate: without a materializer a droplet turns ``active`` on the first GET after
            its create; with one, the server calls ``finish_droplet`` when the container is up.
    """

    def __init__(self, droplet_limit: int = 25, auto_activate: bool = True) -> None:
        self.droplet_limit = droplet_limit
        self.auto_activate = auto_activate
        self.dirty = False
        self.droplets: dict[str, Json] = {}
        self.volumes: dict[str, Json] = {}
        self.vpcs: dict[str, Json] = {}
        self.firewalls: dict[str, Json] = {}
        self.keys: dict[str, Json] = {}
        self.tags: dict[str, Json] = {}
        self.projects: dict[str, Json] = {}
        self.actions: dict[str, Json] = {}
        self.counters = {"droplet": 400000000, "action": 2000000000, "key": 41000000}
        self.account_uuid = str(uuid.uuid4())
        self.owner_id = 7100001
        self._complete()

    def _complete(self) -> None:
        """What a new or loaded account must have (the default project); subclasses add to it."""

    # -- persistence -----------------------------------------------------------------------------
    def to_json(self) -> Json:
        data: Json = {name: getattr(self, name) for name in COLLECTIONS}
        data.update(version=1, counters=self.counters, account_uuid=self.account_uuid, owner_id=self.owner_id)
        return data

    @classmethod
    def from_json(cls, data: Json, droplet_limit: int = 25, auto_activate: bool = True) -> Self:
        state = cls(droplet_limit=droplet_limit, auto_activate=auto_activate)
        for name in COLLECTIONS:
            setattr(state, name, dict(data.get(name) or {}))
        state.counters.update(data.get("counters") or {})
        state.account_uuid = data.get("account_uuid") or state.account_uuid
        state.owner_id = int(data.get("owner_id") or state.owner_id)
        state._complete()
        return state

    def save(self, path: Path) -> None:
        """Write atomically (a reader never sees half a file); mode 0600, it may hold user data."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(self.to_json(), f, indent=1, sort_keys=True)
                f.write("\n")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.dirty = False

    @classmethod
    def load(cls, path: Path, droplet_limit: int = 25, auto_activate: bool = True) -> Self:
        if path.exists() and path.stat().st_size:
            return cls.from_json(json.loads(path.read_text()), droplet_limit, auto_activate)
        return cls(droplet_limit=droplet_limit, auto_activate=auto_activate)

    def _next(self, counter: str) -> int:
        self.counters[counter] += 1
        self.dirty = True
        return self.counters[counter]

    # -- account ---------------------------------------------------------------------------------
    def account(self) -> Json:
        return {
            "droplet_limit": self.droplet_limit, "floating_ip_limit": 3, "reserved_ip_limit": 3,
            "volume_limit": VOLUME_LIMIT, "email": "emulator@example.invalid", "uuid": self.account_uuid,
            "email_verified": True, "status": "active", "status_message": "",
            "team": {"uuid": self.account_uuid, "name": "My Team"},
        }
