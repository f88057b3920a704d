#!/usr/bin/python
"""Ansible module: wait until the coordinator lists a node as active in system.runtime.nodes.

A worker that has started has announced itself to the coordinator's discovery service; the
coordinator adds it to its node list at its next refresh and schedules work on it once its state is
`active`. This module asks the coordinator, over its HTTPS client protocol with a password user, the
way a client does, so the role ends only when the worker takes part in queries.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: trino_node_active
short_description: Wait until Trino's coordinator lists a node as active.
options:
  url: {type: str, required: true, description: The coordinator's HTTPS base URL.}
  ca_path: {type: path, required: true, description: CA file the coordinator's certificate is verified with.}
  user: {type: str, required: true, description: A password-file user.}
  password: {type: str, required: true, no_log: true, description: Its password.}
  node_id: {type: str, required: true, description: The node's node.id.}
  timeout: {type: int, default: 120, description: Seconds to wait.}
"""

import base64
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid

from ansible.module_utils.basic import AnsibleModule


def _request(url: str, context: ssl.SSLContext, headers: dict[str, str], body: bytes | None = None) -> dict:
    # https only: main() checks the coordinator URL, and nextUri is the coordinator's own.
    request = urllib.request.Request(url, data=body, headers=headers, method="POST" if body else "GET")  # noqa: S310
    with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
        return json.load(response)


def _query(base: str, context: ssl.SSLContext, user: str, password: str, sql: str) -> list[list]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"X-Trino-User": user, "Authorization": f"Basic {token}"}
    page = _request(f"{base}/v1/statement", context, headers, sql.encode())
    rows: list[list] = []
    while True:
        if "error" in page:
            raise RuntimeError(page["error"].get("message", "query failed"))
        rows.extend(page.get("data") or [])
        if "nextUri" not in page:
            return rows
        page = _request(page["nextUri"], context, headers)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "ca_path": {"type": "path", "required": True},
            "user": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "node_id": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 120},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].startswith("https://"):
        module.fail_json(msg=f"url must be the coordinator's https:// URL; got {p['url']!r}.")
    try:
        node_id = str(uuid.UUID(p["node_id"]))  # the role's node.id; nothing else goes into the SQL
    except ValueError:
        module.fail_json(msg=f"node_id must be a UUID (node.id in node.properties); got {p['node_id']!r}.")
    context = ssl.create_default_context(cafile=p["ca_path"])
    sql = f"SELECT state FROM system.runtime.nodes WHERE node_id = '{node_id}'"  # noqa: S608 (a UUID)
    started = time.monotonic()
    state, problem = None, None
    while time.monotonic() - started < p["timeout"]:
        try:
            rows = _query(p["url"].rstrip("/"), context, p["user"], p["password"], sql)
            state, problem = (rows[0][0] if rows else None), None
        except (OSError, RuntimeError, ValueError) as error:  # not up yet, or refusing: try again
            problem = str(error)
        if state == "active":
            module.exit_json(changed=False, state=state, waited=round(time.monotonic() - started, 1))
        time.sleep(2)
    module.fail_json(msg=f"The coordinator at {p['url']} does not list node {p['node_id']} as active after"
                         f" {p['timeout']} s (state: {state or 'not listed'}"
                         f"{'; last error: ' + problem if problem else ''}).")


if __name__ == "__main__":
    main()
