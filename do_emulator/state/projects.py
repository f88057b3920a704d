"""Projects: the default one every new droplet and volume lands in, and the ones made through the API."""

from __future__ import annotations

import re
import uuid

from do_emulator.state.core import ApiError, Json, invalid, not_found, now, str_field
from do_emulator.state.keys import Keys

PROJECT_PURPOSES = (
    "Just trying out DigitalOcean", "Class project / Educational purposes", "Website or blog",
    "Web Application", "Service or API", "Mobile Application", "Machine learning / AI / Data processing",
    "IoT", "Operational / Developer tooling",
)
PROJECT_ENVIRONMENTS = ("Development", "Staging", "Production")
_URN = re.compile(r"^do:([a-z_]+):(.+)$")


class Projects(Keys):
    """The account's projects and the resources assigned to each."""

    def _complete(self) -> None:
        super()._complete()
        if not any(p.get("is_default") for p in self.projects.values()):
            self._default_project()

    # -- projects --------------------------------------------------------------------------------
    def _default_project(self) -> None:
        stamp = now()
        project_id = str(uuid.uuid4())
        self.projects[project_id] = {
            "id": project_id, "owner_uuid": self.account_uuid, "owner_id": self.owner_id, "name": "first-project",
            "description": "Update your project information under Settings",
            "purpose": "Just trying out DigitalOcean", "environment": "Development", "is_default": True,
            "created_at": stamp, "updated_at": stamp, "_resources": [],
        }
        self.dirty = True

    def project(self, project_id: str) -> Json:
        if project_id == "default":
            return next(p for p in self.projects.values() if p["is_default"])
        if project_id not in self.projects:
            raise not_found()
        return self.projects[project_id]

    @staticmethod
    def _purpose(value: str) -> str:
        if not value or value in PROJECT_PURPOSES or value.startswith("Other: "):
            return value
        return f"Other: {value}"

    @staticmethod
    def _environment(value: str) -> str:
        if not value:
            return ""
        for known in PROJECT_ENVIRONMENTS:
            if known.lower() == value.lower():
                return known
        raise invalid(f"environment must be one of {', '.join(PROJECT_ENVIRONMENTS)}")

    def create_project(self, body: Json) -> Json:
        name = str_field(body, "name", required=True)
        if len(name) > 175:
            raise invalid("name is too long (maximum is 175 characters)")
        if any(p["name"] == name for p in self.projects.values()):
            raise ApiError(409, f"a project named {name} already exists")
        purpose = str_field(body, "purpose", required=True)
        stamp = now()
        project_id = str(uuid.uuid4())
        project = {
            "id": project_id, "owner_uuid": self.account_uuid, "owner_id": self.owner_id, "name": name,
            "description": str_field(body, "description"), "purpose": self._purpose(purpose),
            "environment": self._environment(str_field(body, "environment")), "is_default": False,
            "created_at": stamp, "updated_at": stamp, "_resources": [],
        }
        self.projects[project_id] = project
        self.dirty = True
        return project

    def update_project(self, project_id: str, body: Json, partial: bool) -> Json:
        project = self.project(project_id)
        for field in ("name", "description", "purpose", "environment"):
            if field not in body and partial:
                continue
            value = body.get(field)
            if value is None and partial:
                continue
            if value is not None and not isinstance(value, str):
                raise invalid(f"{field} must be a string")
            value = value or ""
            if field in ("name", "purpose") and not value:
                raise invalid(f"{field} is required")
            if field == "name" and any(p["name"] == value and p["id"] != project["id"]
                                       for p in self.projects.values()):
                raise ApiError(409, f"a project named {value} already exists")
            project[field] = {"purpose": self._purpose, "environment": self._environment}.get(
                field, lambda v: v)(value)
        if body.get("is_default") is True and not project["is_default"]:
            for other in self.projects.values():
                other["is_default"] = False
            project["is_default"] = True
        project["updated_at"] = now()
        self.dirty = True
        return project

    def delete_project(self, project_id: str) -> None:
        project = self.project(project_id)
        if project["is_default"]:
            raise ApiError(412, "cannot delete the default project")
        if project["_resources"]:
            raise ApiError(412, "cannot delete a project with resources. move or remove the resources first")
        del self.projects[project["id"]]
        self.dirty = True

    def _exists(self, urn: str) -> bool:
        match = _URN.match(urn)
        if match is None:
            raise invalid(f"{urn!r} is not a resource URN like do:droplet:123")
        kind, rid = match.groups()
        table = {"droplet": self.droplets, "volume": self.volumes, "vpc": self.vpcs}.get(kind)
        # Kinds this emulator does not model (domains, buckets, ...) are recorded as given.
        return table is None or rid in table

    def _unassign(self, urn: str) -> None:
        for project in self.projects.values():
            kept = [r for r in project["_resources"] if r["urn"] != urn]
            if len(kept) != len(project["_resources"]):
                project["_resources"] = kept
                self.dirty = True

    def assign_default_project(self, urn: str) -> None:
        """New droplets and volumes land in the default project, as on DigitalOcean."""
        self.assign(self.project("default")["id"], {"resources": [urn]})

    def assign(self, project_id: str, body: Json) -> list[Json]:
        project = self.project(project_id)
        urns = body.get("resources")
        if not isinstance(urns, list) or not all(isinstance(u, str) for u in urns):
            raise invalid("resources must be a list of URNs")
        assigned = []
        for urn in dict.fromkeys(urns):
            # A URN of a resource that is gone (a replaced droplet the provider moves back to the
            # default project) is skipped rather than refused.
            if not self._exists(urn):
                continue
            self._unassign(urn)
            entry = {"urn": urn, "assigned_at": now(), "status": "ok"}
            project["_resources"].append(entry)
            assigned.append(entry)
        self.dirty = True
        return assigned

    def project_resources(self, project_id: str) -> list[Json]:
        return list(self.project(project_id)["_resources"])
