"""The emulated DigitalOcean account: a pure in-memory model, saved as JSON.

Every public method takes and returns plain JSON-compatible data shaped like DigitalOcean's API v2
bodies, and raises :class:`ApiError` with DigitalOcean's status, error id and message wording where
the real API would refuse. Nothing here does I/O except :meth:`State.save` / :meth:`State.load`; the
HTTP layer (``server.py``) serialises calls with one lock and the materializer (``materialize.py``)
is told what to build by the server. Sizes, regions and images come from :mod:`do_emulator.catalogue`.

One module per kind of resource, each a subclass of the one before (the later kinds refer to the
earlier ones: a droplet to its VPC, volumes, keys, tags and project): ``store`` (collections,
persistence, account), ``actions``, ``tags``, ``keys``, ``projects``, ``vpcs``, ``volumes``,
``droplets``, ``firewalls``; ``core`` holds the error and the field checks they share.
"""

from __future__ import annotations

import copy

from do_emulator.state.core import ApiError, Json, invalid, not_found, now, public
from do_emulator.state.firewalls import Firewalls
from do_emulator.state.keys import fingerprint

__all__ = ["ApiError", "Json", "State", "fingerprint", "invalid", "not_found", "now", "public"]


class State(Firewalls):
    """One DigitalOcean account: every resource kind's operations over one :class:`~.store.Store`."""

    def view(self) -> Json:
        """Everything, as lists of API-shaped records (``GET /_emulator/state``).

        Projects carry their ``resources`` as a list of URNs; a droplet that could not be
        materialized carries the reason as ``error``.
        """
        def shown(record: Json) -> Json:
            item = public(record)
            if record.get("_error"):
                item["error"] = record["_error"]
            return item

        projects = [{**public(p), "resources": [r["urn"] for r in p["_resources"]]} for p in self.projects.values()]
        keys = [public(k) for k in self.keys.values()]
        return {
            "droplets": [shown(d) for d in self.droplets.values()],
            "volumes": [public(v) for v in self.volumes.values()],
            "vpcs": [public(v) for v in self.vpcs.values()],
            "firewalls": [public(f) for f in self.firewalls.values()],
            "ssh_keys": keys, "keys": copy.deepcopy(keys),
            "tags": [self.tag(name) for name in self.tags],
            "projects": projects,
            "actions": [public(a) for a in self.actions.values()],
            "account": self.account(),
        }
