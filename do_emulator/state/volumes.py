"""Block storage volumes: create, delete, find by name, and attach / detach / resize actions."""

from __future__ import annotations

import copy
import re
import uuid

from do_emulator import catalogue
from do_emulator.state.core import (
    MAX_VOLUMES_PER_DROPLET,
    PENDING_EVENT,
    VOLUME_LIMIT,
    ApiError,
    Json,
    int_field,
    invalid,
    not_found,
    now,
    str_field,
    str_list,
)
from do_emulator.state.vpcs import Vpcs

VOLUME_GB_MAX = 16384
_VOLUME_NAME = re.compile(r"^[a-z][a-z0-9-]{0,63}$")


class Volumes(Vpcs):
    """The account's volumes."""

    # -- volumes ---------------------------------------------------------------------------------
    def volume(self, volume_id: str) -> Json:
        if volume_id not in self.volumes:
            raise not_found()
        return self.volumes[volume_id]

    def list_volumes(self, name: str = "", region: str = "") -> list[Json]:
        return [v for v in self.volumes.values()
                if (not name or v["name"] == name) and (not region or v["region"]["slug"] == region)]

    def create_volume(self, body: Json) -> Json:
        name = str_field(body, "name", required=True)
        if not _VOLUME_NAME.match(name):
            raise invalid("name: volume names must start with a lowercase letter and contain only lowercase "
                          "letters, numbers and hyphens (at most 64 characters)")
        region = str_field(body, "region", required=True).lower()
        if catalogue.region(region) is None:
            raise invalid("You specified an invalid region for volume creation.")
        if str_field(body, "snapshot_id"):
            raise invalid("snapshot_id: this emulator has no volume snapshots")
        size = body.get("size_gigabytes")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= VOLUME_GB_MAX:
            raise invalid(f"size_gigabytes must be a whole number of GiB between 1 and {VOLUME_GB_MAX}")
        fs_type = str_field(body, "filesystem_type")
        if fs_type not in ("", "ext4", "xfs"):
            raise invalid("filesystem_type must be ext4 or xfs")
        label = str_field(body, "filesystem_label")
        if len(label) > (12 if fs_type == "xfs" else 16):
            raise invalid("filesystem_label is too long (16 characters for ext4, 12 for xfs)")
        if any(v["name"] == name and v["region"]["slug"] == region for v in self.volumes.values()):
            raise invalid(f"a volume named {name} already exists in {region}")
        if len(self.volumes) >= VOLUME_LIMIT:
            raise invalid("creating this volume will exceed your volume limit")
        tags = str_list(body.get("tags"), "tags")
        self._ensure_tags(tags)
        volume_id = str(uuid.uuid4())
        volume = {
            "id": volume_id, "region": copy.deepcopy(catalogue.REGIONS[region]), "droplet_ids": [], "name": name,
            "description": str_field(body, "description"), "size_gigabytes": size, "created_at": now(),
            "filesystem_type": fs_type, "filesystem_label": label, "tags": list(dict.fromkeys(tags)),
        }
        self.volumes[volume_id] = volume
        self.assign_default_project(f"do:volume:{volume_id}")
        self.dirty = True
        return volume

    def delete_volume(self, volume_id: str) -> Json:
        volume = self.volume(volume_id)
        if volume["droplet_ids"]:
            raise ApiError(409, "Volume is currently attached to a Droplet; detach it before deleting it.")
        self._unassign(f"do:volume:{volume_id}")
        del self.volumes[volume_id]
        self.dirty = True
        return volume

    def find_volume(self, name: str, region: str) -> Json:
        for volume in self.volumes.values():
            if volume["name"] == name and volume["region"]["slug"] == region:
                return volume
        raise not_found()

    def _couple(self, volume: Json, droplet: Json) -> None:
        volume["droplet_ids"] = [droplet["id"]]
        if volume["id"] not in droplet["volume_ids"]:
            droplet["volume_ids"].append(volume["id"])
        self.dirty = True

    def _decouple(self, volume: Json, droplet: Json) -> None:
        volume["droplet_ids"] = [i for i in volume["droplet_ids"] if i != droplet["id"]]
        droplet["volume_ids"] = [i for i in droplet["volume_ids"] if i != volume["id"]]
        self.dirty = True

    def volume_action(self, volume: Json, body: Json, materialized: bool) -> tuple[Json, Json | None]:
        """attach / detach / resize; returns (action, droplet or None)."""
        kind = body.get("type")
        region = volume["region"]["slug"]
        owner = f"volume:{volume['id']}"
        if kind in ("attach", "detach"):
            raw = body.get("droplet_id")
            if raw is None and kind == "detach" and volume["droplet_ids"]:
                raw = volume["droplet_ids"][0]
            droplet_id = int_field(raw, "droplet_id")
            droplet = self.droplets.get(str(droplet_id))
            if droplet is None:
                raise invalid(f"droplet_id: Droplet {droplet_id} was not found")
            if self._pending(f"droplet:{droplet_id}") or droplet["status"] == "new":
                raise invalid(PENDING_EVENT)
            if kind == "attach":
                if droplet["region"]["slug"] != region:
                    raise invalid("Droplet and volume must be in the same region.")
                if volume["droplet_ids"] == [droplet_id]:
                    action = self.new_action("attach_volume", "volume", None, region, owner=owner)
                    return action, droplet
                if volume["droplet_ids"]:
                    raise invalid("Volume is already attached to another Droplet.")
                if len(droplet["volume_ids"]) >= MAX_VOLUMES_PER_DROPLET:
                    raise invalid(f"a Droplet can have at most {MAX_VOLUMES_PER_DROPLET} volumes attached")
                self._couple(volume, droplet)
            else:
                if droplet_id not in volume["droplet_ids"]:
                    raise invalid("Attachment not found")
                self._decouple(volume, droplet)
            action = self.new_action(f"{kind}_volume", "volume", None, region,
                                     done=not (materialized and droplet["status"] == "active"), owner=owner)
            # Also listed among the droplet's actions, as DigitalOcean does.
            action["_droplet"] = droplet_id
            return action, droplet
        if kind == "resize":
            size = body.get("size_gigabytes")
            if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= VOLUME_GB_MAX:
                raise invalid(f"size_gigabytes must be a whole number of GiB between 1 and {VOLUME_GB_MAX}")
            if size < volume["size_gigabytes"]:
                raise invalid("Volumes can only be resized to a larger size.")
            volume["size_gigabytes"] = size
            self.dirty = True
            return self.new_action("resize_volume", "volume", None, region, done=not materialized, owner=owner), None
        raise invalid(f"type {kind!r} is not a volume action: use attach, detach or resize")
