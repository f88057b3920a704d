#!/usr/bin/python
"""Ansible module: Trino's password file (user:bcrypt hash per line), changed only when it must be.

A bcrypt hash has a random salt, so hashing on every run would rewrite the file every time. This
module keeps a user's existing line when its hash still verifies the given password, hashes anew
otherwise, and drops users no longer declared. It runs on the host with its Python's `crypt`
(libxcrypt's bcrypt); Trino reads the `$2y$` prefix, the same algorithm as `$2b$`.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: trino_password_file
short_description: Write Trino's bcrypt password file, keeping hashes that still match.
options:
  path: {type: path, required: true, description: The password file.}
  users:
    type: list
    elements: dict
    required: true
    description: Entries with name and password (no_log).
  owner: {type: str, required: true, description: Owner of the file.}
  group: {type: str, required: true, description: Group of the file.}
  cost: {type: int, default: 10, description: bcrypt cost (Trino requires 8 or more).}
  field: {type: str, default: password, description: The entries' key holding the password to hash.}
"""

import os
import tempfile
import warnings

from ansible.module_utils.basic import AnsibleModule

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # Python 3.11 on Debian 12: deprecated, present until 3.13


def _matches(password: str, stored: str) -> bool:
    if not stored.startswith(("$2y$", "$2b$")):
        return False
    probe = "$2b$" + stored[4:]
    return crypt.crypt(password, probe) == probe


def _hash(password: str, cost: int) -> str:
    salt = crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=2**cost)
    hashed = crypt.crypt(password, salt)
    if not hashed or not hashed.startswith("$2b$"):
        raise RuntimeError("this host's crypt has no bcrypt")
    return "$2y$" + hashed[4:]


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "users": {"type": "list", "elements": "dict", "required": True, "no_log": True},
            "owner": {"type": "str", "required": True},
            "group": {"type": "str", "required": True},
            "cost": {"type": "int", "default": 10},
            "field": {"type": "str", "default": "password"},
        },
        supports_check_mode=True,
    )
    path, cost = module.params["path"], module.params["cost"]
    existing: dict[str, str] = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                name, _, stored = line.strip().partition(":")
                if name:
                    existing[name] = stored
    lines, changed_users = [], []
    for user in module.params["users"]:
        name, password = user["name"], user[module.params["field"]]
        stored = existing.get(name, "")
        if not _matches(password, stored):
            stored = _hash(password, cost)
            changed_users.append(name)
        lines.append(f"{name}:{stored}\n")
    removed = sorted(set(existing) - {u["name"] for u in module.params["users"]})
    changed = bool(changed_users or removed) or not os.path.exists(path)
    if changed and not module.check_mode:
        directory = os.path.dirname(path)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".password.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(lines)
        os.replace(tmp, path)
    file_args = module.load_file_common_arguments(
        {"path": path, "owner": module.params["owner"], "group": module.params["group"], "mode": "0640"})
    if not module.check_mode or os.path.exists(path):
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(changed=changed, hashed=changed_users, removed=removed)


if __name__ == "__main__":
    main()
