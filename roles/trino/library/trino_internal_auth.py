#!/usr/bin/python
"""Ansible module: check whether a Trino node accepts internal requests signed with a shared secret.

Trino's nodes authenticate to each other with `internal-communication.shared-secret`: each
internal request carries an `X-Trino-Internal-Bearer` JWT (HS256, keyed with the SHA-256 of the
secret, subject the sender's node id, five minutes' expiry). This module signs such a token with
the given secret and asks the node for its task list (`GET /v1/task`, an internal-only resource),
as another node would: HTTP 200 is a secret the node accepts, 401 one it refuses. The role uses it
to prove each node takes the current secret, and after a rotation that it refuses the old one.
"""

from __future__ import annotations

DOCUMENTATION = r"""
module: trino_internal_auth
short_description: Check whether a Trino node accepts internal requests signed with a shared secret.
options:
  url: {type: str, required: true, description: The node's HTTPS base URL.}
  ca_path: {type: path, required: true, description: CA file the node's certificate is verified with.}
  secret: {type: str, required: true, no_log: true, description: The shared secret to sign with.}
  expect: {type: str, required: true, choices: [accepted, refused], description: What the node must do.}
  subject: {type: str, default: platform-ctl-check, description: The token's subject (a node id).}
"""

import base64
import hashlib
import hmac
import json
import ssl
import time
import urllib.error
import urllib.request

from ansible.module_utils.basic import AnsibleModule

#: What each expectation means as an HTTP status of GET /v1/task.
STATUS = {"accepted": 200, "refused": 401}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def internal_token(secret: str, subject: str, now: float | None = None) -> str:
    """The JWT a Trino node with ``secret`` sends (InternalAuthenticationManager.generateJwt)."""
    key = hashlib.sha256(secret.encode()).digest()
    header = _b64(json.dumps({"alg": "HS256"}, separators=(",", ":")).encode())
    claims = {"sub": subject, "exp": int((now if now is not None else time.time()) + 300)}
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(signature)}"


def status_of(url: str, context: ssl.SSLContext, token: str) -> int:
    """The HTTP status of GET <url>/v1/task with the internal bearer ``token``."""
    request = urllib.request.Request(f"{url.rstrip('/')}/v1/task",  # noqa: S310 (main() checks https)
                                     headers={"X-Trino-Internal-Bearer": token})
    try:
        with urllib.request.urlopen(request, context=context, timeout=30) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "ca_path": {"type": "path", "required": True},
            "secret": {"type": "str", "required": True, "no_log": True},
            "expect": {"type": "str", "required": True, "choices": sorted(STATUS)},
            "subject": {"type": "str", "default": "platform-ctl-check"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not p["url"].startswith("https://"):
        module.fail_json(msg=f"url must be the node's https:// URL; got {p['url']!r}.")
    context = ssl.create_default_context(cafile=p["ca_path"])
    try:
        status = status_of(p["url"], context, internal_token(p["secret"], p["subject"]))
    except OSError as error:
        module.fail_json(msg=f"GET {p['url']}/v1/task: {error}")
    if status != STATUS[p["expect"]]:
        module.fail_json(msg=f"{p['url']} answered an internal request signed with this secret with HTTP {status};"
                             f" a secret it has {p['expect']} gets {STATUS[p['expect']]}.", status=status)
    module.exit_json(changed=False, status=status)


if __name__ == "__main__":
    main()
