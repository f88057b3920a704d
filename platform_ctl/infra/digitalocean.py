"""The `digitalocean` backend: the OpenTofu root module in ``terraform/``, one working directory per environment.

``.platform/<env>/tofu/`` holds symlinks to the root module's files (one copy of the code for
every environment), a generated ``backend.tf`` (local state beside it, or the spec's S3 bucket),
the generated ``platform.auto.tfvars.json`` (mode 0600: it carries the hosts' SSH host keys) and
OpenTofu's own ``.terraform/``. Everything the inventory needs comes back from the root module's
``hosts`` output, kept in ``outputs.json`` so reading hosts needs no OpenTofu run.

SSH host keys are made on the controller and handed to cloud-init, so the first SSH connection
already checks the host's key (no trust-on-first-use).

Volumes: ``prevent_destroy`` cannot be a variable, so the droplet group module has two volume
resources, ``protected`` and ``unprotected``; when the spec's ``allow_volume_deletion`` changes,
the volumes' state moves between them before the plan (never a destroy and re-create).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from platform_ctl.access import Access, ssh_answers
from platform_ctl.errors import InfrastructureError, PreflightError, UsageError
from platform_ctl.events import Event, Reporter
from platform_ctl.infra.hosts import Host, HostStatus, Volume, volume_device
from platform_ctl.paths import COLLECTION_ROOT

if TYPE_CHECKING:
    from platform_ctl.infra.tofu import PlanSummary, Tofu
    from platform_ctl.spec import Spec

PHASE = "infrastructure"
TERRAFORM_ROOT = COLLECTION_ROOT / "terraform"
TOKEN_VARIABLES = ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")
_VOLUME_ADDRESS = re.compile(r"^(?P<prefix>.*)\.digitalocean_volume\.(?P<kind>protected|unprotected)(?P<key>\[.*\])$")


def token() -> str | None:
    return next((os.environ[v] for v in TOKEN_VARIABLES if os.environ.get(v)), None)


def _base_setting(project_env_dir: Path, variable: str) -> Any:
    """A base role variable as the host firewall gets it.

    That is the role's default, or the environment's override in ``group_vars/all/main.yml``, which
    replaces the whole value (as it does for Ansible); an override of null is empty.
    """
    defaults = yaml.safe_load((COLLECTION_ROOT / "roles/base/defaults/main.yml").read_text())
    value = defaults[variable]
    override = project_env_dir / "group_vars" / "all" / "main.yml"
    if override.exists():
        data = yaml.safe_load(override.read_text()) or {}
        if variable in data:
            value = data[variable]
    return value


def _firewall_ports(project_env_dir: Path, variable: str) -> dict[str, list[int]]:
    """A base role port table (group -> sorted TCP ports)."""
    ports: dict[str, list[int]] = _base_setting(project_env_dir, variable) or {}
    return {group: sorted({int(p) for p in values or []}) for group, values in sorted(ports.items())}


def group_ports(project_env_dir: Path) -> dict[str, list[int]]:
    """Ports each group serves inside the VPC (``base_firewall_group_ports``)."""
    return _firewall_ports(project_env_dir, "base_firewall_group_ports")


def public_ports(project_env_dir: Path) -> dict[str, list[int]]:
    """Ports each group serves to users, open to any source (``base_firewall_public_ports``)."""
    return _firewall_ports(project_env_dir, "base_firewall_public_ports")


def service_rules(project_env_dir: Path) -> list[dict[str, Any]]:
    """What every host serves to the hosts of some groups only (``base_firewall_service_rules``).

    The cloud firewall mirrors the part of each rule that names hosts by group: a TCP rule's
    ``source_groups`` become the source tags of its ports on every droplet. Not mirrored, so closed
    at the cloud firewall whatever nftables admits: UDP rules, a rule's ``sources`` CIDRs (with or
    without ``source_groups``) and a rule without ``source_groups`` (whose source is the VPC unless
    it lists CIDRs). ``base_firewall_extra_rules`` is not read at all. A rule's ``host_groups`` is
    not mirrored either: the cloud firewall admits its ports on every droplet, and nftables closes
    them on the hosts outside those groups.
    """
    rules: list[dict[str, Any]] = _base_setting(project_env_dir, "base_firewall_service_rules") or []
    return [
        {"name": str(rule["name"]),
         "ports": sorted({int(p) for p in rule.get("ports") or []}),
         "source_groups": sorted(set(rule["source_groups"]))}
        for rule in rules
        if (rule.get("protocol") or "tcp") == "tcp" and rule.get("source_groups")
    ]


class DigitalOceanBackend:
    def __init__(self, state_dir: Path, env_dir: Path) -> None:
        self.state_dir = state_dir
        self.env_dir = env_dir
        self.workdir = state_dir / "tofu"

    @property
    def _outputs_file(self) -> Path:
        return self.workdir / "outputs.json"

    @property
    def retained_file(self) -> Path:
        return self.state_dir / "volumes" / "retained.json"

    # -- preflight -------------------------------------------------------------------------------
    def preflight(self, spec: Spec) -> None:
        if token() is None:
            raise PreflightError(
                "DIGITALOCEAN_TOKEN is not set: export a DigitalOcean API token with read and write scope "
                f"(or DIGITALOCEAN_ACCESS_TOKEN) before touching {spec.name}"
            )
        if spec.state.backend == "s3" and not (os.environ.get("AWS_ACCESS_KEY_ID")
                                               and os.environ.get("AWS_SECRET_ACCESS_KEY")):
            raise PreflightError(
                f"state.backend s3 ({spec.state.bucket}) needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: "
                "export the Spaces access key pair that owns the state bucket"
            )

    # -- working directory -----------------------------------------------------------------------
    def _host_keys(self, spec: Spec) -> dict[str, dict[str, str]]:
        """Each host's ed25519 SSH host key pair, made once on the controller."""
        directory = self.state_dir / "ssh" / "host_keys"
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        keys = {}
        for plan in spec.hosts():
            private = directory / plan.name
            if not private.exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", plan.fqdn, "-f", str(private)],
                               check=True)
            keys[plan.name] = {"ed25519_private": private.read_text(),
                               "ed25519_public": private.with_suffix(".pub").read_text().strip()}
        return keys

    def tfvars(self, spec: Spec, access: Access) -> dict[str, Any]:
        """The root module's variables, derived from the spec (and the controller's keys)."""
        return {
            "api_endpoint": spec.api_endpoint,
            "environment": spec.name,
            "region": spec.region,
            "image": spec.image,
            "domain": f"{spec.name}.{spec.domain}",
            "vpc_cidr": spec.vpc_cidr,
            "admin_cidrs": list(spec.admin_cidrs),
            "admin_user": access.user,
            "admin_ssh_public_key": access.public_key,
            "allow_volume_deletion": spec.allow_volume_deletion,
            "hosts": {
                plan.name: {
                    "group": plan.groups[0],
                    "size": plan.size.slug,
                    **({"volume": {"name": plan.volumes[0].name, "size_gb": plan.volumes[0].size_gb}}
                       if plan.volumes else {}),
                }
                for plan in spec.hosts()
            },
            "group_ports": group_ports(self.env_dir),
            # The same table the host firewall opens to any source; only groups that have hosts.
            "public_ports": {group: ports for group, ports in public_ports(self.env_dir).items()
                             if ports and spec.count(group)},
            # The role's table as it is: the module opens a port only from the groups that have hosts.
            "service_rules": service_rules(self.env_dir),
            "host_keys": self._host_keys(spec),
        }

    def _backend_block(self, spec: Spec) -> str:
        state = spec.state
        if state.backend == "local":
            return 'terraform {\n  backend "local" {\n    path = "terraform.tfstate"\n  }\n}\n'
        key = state.key or f"platform-ctl/{spec.name}.tfstate"
        return (
            "terraform {\n"
            '  backend "s3" {\n'
            f'    bucket                      = "{state.bucket}"\n'
            f'    key                         = "{key}"\n'
            f'    region                      = "{state.region}"\n'
            f'    endpoints                   = {{ s3 = "{state.endpoint}" }}\n'
            "    use_path_style              = true\n"
            "    skip_credentials_validation = true\n"
            "    skip_region_validation      = true\n"
            "    skip_requesting_account_id  = true\n"
            "    skip_metadata_api_check     = true\n"
            "    skip_s3_checksum            = true\n"
            f"    use_lockfile                = {'true' if state.lock else 'false'}\n"
            "  }\n"
            "}\n"
        )

    def _prepare(self, spec: Spec, access: Access, report: Reporter) -> Tofu:
        from platform_ctl.infra.tofu import Tofu
        from platform_ctl.infra.toolchain import ensure_toolchain

        toolchain = ensure_toolchain(lambda m: report(Event("message", phase=PHASE, message=m)))
        self.workdir.mkdir(parents=True, exist_ok=True)
        wanted = {p.name for p in TERRAFORM_ROOT.iterdir() if p.suffix == ".tf" or p.name == "modules"}
        for link in self.workdir.iterdir():
            if link.is_symlink() and link.name not in wanted:
                link.unlink()
        for name in sorted(wanted):
            link = self.workdir / name
            if not link.is_symlink():
                link.symlink_to(TERRAFORM_ROOT / name)
        _write(self.workdir / "backend.tf", self._backend_block(spec))
        _write(self.workdir / "platform.auto.tfvars.json", json.dumps(self.tfvars(spec, access), indent=2) + "\n",
               mode=0o600)
        tofu = Tofu(toolchain, self.workdir, {**os.environ, "DIGITALOCEAN_TOKEN": token() or ""})
        tofu.init()
        return tofu

    def _reconcile_volumes(self, spec: Spec, tofu: Tofu, report: Reporter) -> None:
        """Move volumes between ``protected`` and ``unprotected`` to match allow_volume_deletion."""
        want = "unprotected" if spec.allow_volume_deletion else "protected"
        for address in tofu.state_list():
            match = _VOLUME_ADDRESS.match(address)
            if match and match["kind"] != want:
                target = f"{match['prefix']}.digitalocean_volume.{want}{match['key']}"
                tofu.state_mv(address, target)
                report(Event("message", phase=PHASE, message=f"volume {match['key']}: now {want} (state moved)"))

    def _adopt_retained_volumes(self, spec: Spec, tofu: Tofu) -> list[str]:
        """Import blocks for the volumes an earlier destroy kept, so this deploy reattaches them.

        Config-driven ``import`` blocks (a generated ``imports.tf``), not ``tofu import``: the
        command evaluates the whole configuration and fails on for_each keys known only after apply.
        Returns the volumes adopted.
        """
        imports = self.workdir / "imports.tf"
        imports.unlink(missing_ok=True)
        if not self.retained_file.exists():
            return []
        retained: dict[str, str] = json.loads(self.retained_file.read_text())
        in_state = set(tofu.state_list())
        kind = "unprotected" if spec.allow_volume_deletion else "protected"
        blocks, adopted = [], []
        for plan in spec.hosts():
            for volume in plan.volumes:
                volume_id = retained.get(volume.name)
                address = f'module.droplet_group["{plan.groups[0]}"].digitalocean_volume.{kind}["{plan.name}"]'
                if volume_id and address not in in_state:
                    blocks.append(f'import {{\n  to = {address}\n  id = "{volume_id}"\n}}\n')
                    adopted.append(volume.name)
        if blocks:
            _write(imports, "# Generated by platform-ctl: volumes kept by an earlier destroy.\n" + "\n".join(blocks))
        return adopted

    def _forget_adopted(self, adopted: list[str]) -> None:
        (self.workdir / "imports.tf").unlink(missing_ok=True)
        if not adopted or not self.retained_file.exists():
            return
        retained: dict[str, str] = json.loads(self.retained_file.read_text())
        for name in adopted:
            retained.pop(name, None)
        if retained:
            _write(self.retained_file, json.dumps(retained, indent=2, sort_keys=True) + "\n")
        else:
            self.retained_file.unlink()

    # -- apply -----------------------------------------------------------------------------------
    def plan(self, spec: Spec, access: Access, report: Reporter) -> PlanSummary:
        """What apply would change (for ``deploy --check``); changes nothing but the working directory."""
        tofu = self._prepare(spec, access, report)
        # A state move is a change too, so --check only reports whether one is due.
        return tofu.plan(report)

    def apply(self, spec: Spec, access: Access, report: Reporter) -> list[Host]:
        tofu = self._prepare(spec, access, report)
        self._reconcile_volumes(spec, tofu, report)
        adopted = self._adopt_retained_volumes(spec, tofu)
        summary = tofu.plan_and_apply(self.workdir / "deploy.tfplan", report)
        self._forget_adopted(adopted)
        for name in adopted:
            report(Event("message", phase=PHASE,
                         message=f"volume {name}, kept by an earlier destroy: imported, its data is reattached"))
        report(Event("message", phase=PHASE, message=f"plan: {summary.line()}"))
        _write(self._outputs_file, json.dumps(tofu.output(), indent=2, sort_keys=True) + "\n")
        hosts = self.hosts(spec)
        self._write_known_hosts(spec, access, hosts)
        return hosts

    def retire(self, spec: Spec, access: Access, names: list[str], report: Reporter) -> list[Host]:
        # Droplets are keyed by name, so the plan of the smaller spec destroys exactly those.
        report(Event("message", phase=PHASE, message=f"removing droplets {', '.join(names)}"))
        return self.apply(spec, access, report)

    def _write_known_hosts(self, spec: Spec, access: Access, hosts: list[Host]) -> None:
        keys = self._host_keys(spec)
        lines = [
            f"{h.public_ip},{h.private_ip},{h.name},{h.fqdn} {' '.join(keys[h.name]['ed25519_public'].split()[:2])}"
            for h in hosts
        ]
        access.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        access.known_hosts.write_text("\n".join(lines) + "\n")

    # -- read ------------------------------------------------------------------------------------
    def _outputs(self) -> dict[str, Any]:
        if not self._outputs_file.exists():
            return {}
        return dict(json.loads(self._outputs_file.read_text()))

    def hosts(self, spec: Spec) -> list[Host]:
        reported: dict[str, Any] = self._outputs().get("hosts") or {}
        hosts = []
        for plan in spec.hosts():
            out = reported.get(plan.name)
            if out is None:
                raise InfrastructureError(f"host {plan.name} has no droplet yet: run `platform-ctl deploy {spec.name}`")
            hosts.append(Host(
                name=plan.name,
                fqdn=plan.fqdn,
                groups=plan.groups,
                private_ip=out["private_ipv4"],
                public_ip=out["public_ipv4"],
                size=plan.size,
                volumes=tuple(Volume(v["name"], int(v["size_gb"]), volume_device(v["name"]))
                              for v in out.get("volumes") or []),
            ))
        return hosts

    def status(self, spec: Spec) -> list[HostStatus]:
        """Each host's droplet as the API reports it now (powered off, gone), and whether SSH answers.

        The OpenTofu outputs say which droplet is which host, not whether it runs: a droplet powered
        off or deleted outside OpenTofu still has its outputs.
        """
        reported: dict[str, Any] = self._outputs().get("hosts") or {}
        droplets = self._droplets(spec) if reported else {}
        out = []
        for plan in spec.hosts():
            host = reported.get(plan.name)
            address = host["public_ipv4"] if host else ""
            droplet = droplets.get(int(host["id"])) if host else None
            state = "missing" if droplet is None else DROPLET_STATES.get(droplet["status"], droplet["status"])
            out.append(HostStatus(plan.name, plan.groups, state, address,
                                  ssh=state == "running" and ssh_answers(address)))
        return out

    def _droplets(self, spec: Spec) -> dict[int, dict[str, Any]]:
        """The environment's droplets by id, from the API (``GET /v2/droplets?tag_name=``, every page)."""
        api = DigitalOceanApi(spec.api_endpoint)
        found: dict[int, dict[str, Any]] = {}
        page = 1
        while True:
            answer = api.get("/v2/droplets", tag_name=f"platform-{spec.name}", per_page=200, page=page)
            found.update({int(d["id"]): d for d in answer.get("droplets") or []})
            if not (answer.get("links") or {}).get("pages", {}).get("next"):
                return found
            page += 1

    # -- destroy ---------------------------------------------------------------------------------
    def destroy(self, spec: Spec, report: Reporter, with_data: bool) -> list[str]:
        """Destroy everything in the state except protected volumes; return the volumes kept."""
        from platform_ctl.access import ensure_access

        if not (self.workdir / "backend.tf").exists():
            return []
        tofu = self._prepare(spec, ensure_access(spec, self.state_dir, create=False), report)
        self._reconcile_volumes(spec, tofu, report)
        outputs = self._outputs().get("hosts") or {}
        ids = {v["name"]: v["id"] for h in outputs.values() for v in h.get("volumes") or []}
        kept = [a for a in tofu.state_list() if (m := _VOLUME_ADDRESS.match(a)) and m["kind"] == "protected"]
        if kept and with_data:
            # prevent_destroy refuses the whole plan, so protected volumes leave the state first.
            tofu.state_rm(kept)
        elif kept:
            raise UsageError(f"{spec.name} has protected volumes: destroy needs --with-data")
        summary = tofu.plan_and_apply(self.workdir / "destroy.tfplan", report, destroy=True)
        report(Event("message", phase="destroy", message=f"destroyed: {summary.line()}"))
        # Volume resources are keyed by host name.
        volume_of = {plan.name: v.name for plan in spec.hosts() for v in plan.volumes}
        retained = sorted(volume_of.get(key, key) for a in kept
                          if (m := _VOLUME_ADDRESS.match(a)) and (key := m["key"].strip('[]"')))
        if retained:
            previous = json.loads(self.retained_file.read_text()) if self.retained_file.exists() else {}
            previous.update({name: ids.get(name, "") for name in retained})
            _write(self.retained_file, json.dumps(previous, indent=2, sort_keys=True) + "\n")
            report(Event("message", phase="destroy", message=(
                f"kept protected volumes (allow_volume_deletion: false): {', '.join(retained)}; ids in "
                f"{self.retained_file}")))
        self._outputs_file.unlink(missing_ok=True)
        for name in ("deploy.tfplan", "destroy.tfplan"):
            (self.workdir / name).unlink(missing_ok=True)
        return retained


#: A droplet's ``status`` in the API -> the host state `status` shows (as the local backend's).
DROPLET_STATES = {"active": "running", "off": "stopped", "new": "creating", "archive": "archived"}


class DigitalOceanApi:
    """The few read-only API calls platform-ctl makes itself (OpenTofu's provider makes the others)."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint.rstrip("/")

    def get(self, path: str, **query: object) -> dict[str, Any]:
        import urllib.error
        import urllib.parse
        import urllib.request

        secret = token()
        if secret is None:
            raise PreflightError("DIGITALOCEAN_TOKEN is not set: export a DigitalOcean API token (read scope is "
                                 "enough) to read the droplets' state")
        url = f"{self.endpoint}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
        # S310: the spec validates api_endpoint as an http(s) origin, so no file: or custom scheme gets here.
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {secret}",  # noqa: S310
                                                       "Accept": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - as above
                return dict(json.load(answer))
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode(errors="replace")[:300]
            if exc.code == 401:
                raise InfrastructureError(f"GET {path}: the DigitalOcean API refused the token (401): check "
                                          "DIGITALOCEAN_TOKEN") from None
            raise InfrastructureError(f"GET {path}: the DigitalOcean API answered {exc.code}: {detail}") from None
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise InfrastructureError(f"GET {path}: no answer from the DigitalOcean API at {self.endpoint} "
                                      f"({exc})") from None


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)
