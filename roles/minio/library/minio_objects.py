#!/usr/bin/python3
"""Ansible module: reconcile MinIO buckets, policies and users through mc (admin API)."""

DOCUMENTATION = r"""
module: minio_objects
short_description: Reconcile MinIO buckets, bucket encryption, policies and users with mc
description:
  - Creates missing buckets and sets default server-side encryption (SSE-S3 with the KMS key) on
    those marked encrypted; anonymous access stays off (MinIO's default).
  - Creates or updates IAM policies whose document differs.
  - Creates users, updates a user whose secret key no longer signs, and attaches exactly the
    declared policies.
  - Talks to the alias C(platform), given as C(MC_HOST_platform=https://ROOT:SECRET@HOST:PORT) in
    the task's environment, so the root credentials are never arguments.
options:
  mc: {type: path, required: true, description: Path of the mc binary.}
  buckets: {type: list, elements: dict, required: true, description: "[{name, encrypted}]"}
  policies: {type: dict, required: true, description: Policy name to IAM policy document.}
  users: {type: list, elements: dict, required: true, description: "[{access_key, secret_key, policies}]"}
  remove_users:
    type: list
    elements: dict
    default: []
    description:
      - "[{access_key, secret_key}]: users to delete (rotated out). Each one's credentials are then
        tried, and the task fails unless the server refuses them."
"""

RETURN = r"""
actions: {type: list, description: What was changed, one line each (never a secret).}
"""

import json
import os
import tempfile
from urllib.parse import urlsplit, urlunsplit

from ansible.module_utils.basic import AnsibleModule

ALIAS = "platform"
# Errors that mean "these credentials do not sign": the user is unknown or its secret differs.
_BAD_CREDENTIALS = ("SignatureDoesNotMatch", "InvalidAccessKeyId")


class Mc:
    def __init__(self, module, path):
        self.module = module
        self.path = path

    def run(self, *args, env=None, check=True):
        """Run mc --json; return the parsed JSON lines (the last one carries errors)."""
        rc, out, err = self.module.run_command(
            [self.path, "--json", "--no-color", *args], environ_update=env or {}, check_rc=False)
        lines = [json.loads(line) for line in out.splitlines() if line.strip().startswith("{")]
        if check and (rc != 0 or any(line.get("status") == "error" for line in lines)):
            self.module.fail_json(msg=f"mc {' '.join(args[:3])} failed: {_error_text(lines) or err.strip()}")
        return rc, lines


def _error_text(lines):
    for line in lines:
        if line.get("status") == "error":
            error = line.get("error", {})
            cause = error.get("cause", {})
            return f"{error.get('message', '')} {cause.get('message', '')}".strip()
    return ""


def _error_code(lines):
    for line in lines:
        cause = (line.get("error") or {}).get("cause") or {}
        code = (cause.get("error") or {}).get("Code")
        if code:
            return code
    return ""


def reconcile_buckets(mc, buckets, check_mode):
    actions = []
    _, listed = mc.run("ls", ALIAS)
    existing = {line["key"].rstrip("/") for line in listed if line.get("type") == "folder"}
    for bucket in buckets:
        name = bucket["name"]
        if name not in existing:
            actions.append(f"created bucket {name}")
            if not check_mode:
                mc.run("mb", f"{ALIAS}/{name}")
        if bucket.get("encrypted", True):
            encrypted = False
            if name in existing:
                _, info = mc.run("encrypt", "info", f"{ALIAS}/{name}")
                encrypted = any((line.get("encryption") or {}).get("algorithm") for line in info)
            if not encrypted:
                actions.append(f"set default encryption (SSE-S3, KMS) on {name}")
                if not check_mode:
                    mc.run("encrypt", "set", "sse-s3", f"{ALIAS}/{name}")
    return actions


def reconcile_policies(mc, policies, check_mode):
    actions = []
    for name, document in sorted(policies.items()):
        rc, info = mc.run("admin", "policy", "info", ALIAS, name, check=False)
        current = None
        if rc == 0 and info:
            current = (info[-1].get("policyInfo") or {}).get("Policy")
        if _normalise(current) == _normalise(document):
            continue
        actions.append(f"{'updated' if current else 'created'} policy {name}")
        if not check_mode:
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(document, f)
            try:
                mc.run("admin", "policy", "create", ALIAS, name, f.name)
            finally:
                os.unlink(f.name)
    return actions


def _normalise(document):
    """A policy document in a comparable form: statements and their lists sorted."""
    if not document:
        return None

    def norm(value):
        if isinstance(value, dict):
            return {k: norm(v) for k, v in sorted(value.items()) if k != "Sid"}
        if isinstance(value, list):
            return sorted((norm(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True))
        return value

    statements = document.get("Statement", [])
    return norm({"Statement": [s if isinstance(s.get("Action"), list) else {**s, "Action": [s["Action"]]}
                               for s in statements]})


def _signs(mc, endpoint, access_key, secret_key):
    """True when access_key/secret_key are accepted by the server (any answer but a bad signature)."""
    parts = urlsplit(endpoint)
    url = urlunsplit((parts.scheme, f"{access_key}:{secret_key}@{parts.hostname}:{parts.port}", "", "", ""))
    _, lines = mc.run("ls", "check", env={"MC_HOST_check": url}, check=False)
    return _error_code(lines) not in _BAD_CREDENTIALS


def reconcile_users(mc, users, endpoint, check_mode):
    actions = []
    for user in users:
        access_key, secret_key = user["access_key"], user["secret_key"]
        wanted = set(user.get("policies") or [])
        rc, info = mc.run("admin", "user", "info", ALIAS, access_key, check=False)
        exists = rc == 0 and info and info[-1].get("status") == "success"
        if not exists or not _signs(mc, endpoint, access_key, secret_key):
            actions.append(f"{'set the secret key of' if exists else 'created'} user {access_key}")
            if not check_mode:
                mc.run("admin", "user", "add", ALIAS, access_key, secret_key)
        attached = set()
        if exists:
            attached = {p for p in (info[-1].get("policyName") or "").split(",") if p}
        for policy in sorted(wanted - attached):
            actions.append(f"attached policy {policy} to {access_key}")
            if not check_mode:
                mc.run("admin", "policy", "attach", ALIAS, policy, "--user", access_key)
        for policy in sorted(attached - wanted):
            actions.append(f"detached policy {policy} from {access_key}")
            if not check_mode:
                mc.run("admin", "policy", "detach", ALIAS, policy, "--user", access_key)
    return actions


def remove_users(mc, users, endpoint, check_mode):
    actions = []
    for user in users:
        access_key = user["access_key"]
        rc, info = mc.run("admin", "user", "info", ALIAS, access_key, check=False)
        if rc == 0 and info and info[-1].get("status") == "success":
            actions.append(f"removed user {access_key}")
            if check_mode:
                continue
            mc.run("admin", "user", "remove", ALIAS, access_key)
        if not check_mode and _signs(mc, endpoint, access_key, user["secret_key"]):
            mc.module.fail_json(msg=f"user {access_key} was removed, but its credentials are still accepted")
    return actions


def main():
    module = AnsibleModule(
        argument_spec={
            "mc": {"type": "path", "required": True},
            "buckets": {"type": "list", "elements": "dict", "required": True},
            "policies": {"type": "dict", "required": True},
            "users": {
                "type": "list", "elements": "dict", "required": True,
                "options": {
                    "access_key": {"type": "str", "required": True},
                    "secret_key": {"type": "str", "required": True, "no_log": True},
                    "policies": {"type": "list", "elements": "str", "default": []},
                },
            },
            "remove_users": {
                "type": "list", "elements": "dict", "default": [],
                "options": {
                    "access_key": {"type": "str", "required": True},
                    "secret_key": {"type": "str", "required": True, "no_log": True},
                },
            },
        },
        supports_check_mode=True,
    )
    endpoint = os.environ.get(f"MC_HOST_{ALIAS}")
    if not endpoint:
        module.fail_json(msg=f"MC_HOST_{ALIAS} is not set in the task environment")
    mc = Mc(module, module.params["mc"])
    check = module.check_mode
    actions = reconcile_buckets(mc, module.params["buckets"], check)
    actions += reconcile_policies(mc, module.params["policies"], check)
    actions += reconcile_users(mc, module.params["users"], endpoint, check)
    actions += remove_users(mc, module.params["remove_users"], endpoint, check)
    module.exit_json(changed=bool(actions), actions=actions)


if __name__ == "__main__":
    main()
