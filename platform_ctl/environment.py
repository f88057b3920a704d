"""An environment as the commands see it: its project, spec, state directory and backend."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from platform_ctl.paths import Project, check_env_name

if TYPE_CHECKING:
    from platform_ctl.infra import Access, Backend
    from platform_ctl.spec import Spec


@dataclass
class Environment:
    project: Project
    name: str
    spec: Spec

    @classmethod
    def load(cls, project: Project, name: str) -> Environment:
        """Load and validate the environment's spec; nothing is touched before this succeeds."""
        from platform_ctl.spec import load_spec

        check_env_name(name)
        return cls(project, name, load_spec(project.spec_path(name), env=name))

    @property
    def state_dir(self) -> Path:
        return self.project.state_dir(self.name)

    @property
    def inventory(self) -> Path:
        from platform_ctl.inventory import inventory_path

        return inventory_path(self.project, self.name)

    def access(self, create: bool = False) -> Access:
        from platform_ctl.access import ensure_access

        return ensure_access(self.spec, self.state_dir, create=create)

    @cached_property
    def backend(self) -> Backend:
        from platform_ctl.infra import backend_for

        return backend_for(self.spec, self.state_dir, self.project.env_dir(self.name))

    def vault_password_file(self) -> Path | None:
        from platform_ctl.vault import vault_password_file

        return vault_password_file(self.name)
