"""Tags: made on first use by any resource, listed with what carries them, (un)tagged in bulk."""

from __future__ import annotations

from collections.abc import Iterable

from do_emulator.state.actions import Actions
from do_emulator.state.core import TAG_NAME, ApiError, Json, invalid, not_found, now, str_field


class Tags(Actions):
    """Tags of droplets, volumes and firewalls."""

    # -- tags (shared) ---------------------------------------------------------------------------
    def _ensure_tags(self, names: Iterable[str]) -> None:
        for name in names:
            if not TAG_NAME.match(name):
                raise invalid(f"tag name {name!r} is invalid: use 1-255 characters of a-z, A-Z, 0-9, ':', '-' "
                              "and '_'")
            if name not in self.tags:
                self.tags[name] = {"name": name, "_created_at": now()}
                self.dirty = True

    def create_tag(self, body: Json) -> Json:
        name = str_field(body, "name", required=True)
        self._ensure_tags([name])
        return self.tag(name)

    def tag(self, name: str) -> Json:
        if name not in self.tags:
            raise not_found()
        droplets = [d for d in self.droplets.values() if name in d["tags"]]
        volumes = [v for v in self.volumes.values() if name in v["tags"]]
        resources: Json = {
            "count": len(droplets) + len(volumes),
            "droplets": {"count": len(droplets)},
            "images": {"count": 0}, "volumes": {"count": len(volumes)},
            "volume_snapshots": {"count": 0}, "databases": {"count": 0},
        }
        if droplets:
            resources["droplets"]["last_tagged_uri"] = f"/v2/droplets/{droplets[-1]['id']}"
        if volumes:
            resources["volumes"]["last_tagged_uri"] = f"/v2/volumes/{volumes[-1]['id']}"
        return {"name": name, "resources": resources}

    def list_tags(self) -> list[Json]:
        return [self.tag(name) for name in self.tags]

    def delete_tag(self, name: str) -> None:
        if name not in self.tags:
            raise not_found()
        del self.tags[name]
        for record in (*self.droplets.values(), *self.volumes.values(), *self.firewalls.values()):
            if name in record["tags"]:
                record["tags"].remove(name)
        self.dirty = True

    def _tag_targets(self, body: Json) -> list[Json]:
        resources = body.get("resources")
        if not isinstance(resources, list) or not resources:
            raise invalid("resources must be a non-empty list of {resource_id, resource_type}")
        targets = []
        for item in resources:
            if not isinstance(item, dict):
                raise invalid("resources must be a list of {resource_id, resource_type}")
            kind, rid = item.get("resource_type"), str(item.get("resource_id", ""))
            table = {"droplet": self.droplets, "volume": self.volumes}.get(str(kind))
            if table is None:
                raise invalid(f"resource_type {kind!r} cannot be tagged here: use droplet or volume")
            if rid not in table:
                raise ApiError(404, f"{kind} {rid} not found")
            targets.append(table[rid])
        return targets

    def tag_resources(self, name: str, body: Json) -> None:
        if name not in self.tags:
            raise not_found()
        for record in self._tag_targets(body):
            if name not in record["tags"]:
                record["tags"].append(name)
                self.dirty = True

    def untag_resources(self, name: str, body: Json) -> None:
        if name not in self.tags:
            raise not_found()
        for record in self._tag_targets(body):
            if name in record["tags"]:
                record["tags"].remove(name)
                self.dirty = True
