"""Run code in a new kernel of a JupyterLab server, as a browser does, and print what it printed.

python kernel_exec.py HOST:PORT KERNEL CODE, with the token in JUPYTER_TOKEN: starts a kernel over
the REST API, sends one execute_request over the kernel's websocket (both authenticated with the
token, TLS verified against the system's trust store), prints the output, shuts the kernel down.
Exit 1 with the traceback when the code raised. Runs with the server's own virtualenv (its
websocket-client), so it needs nothing else on the host.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import urllib.request
import uuid

import websocket

CA = "/etc/ssl/certs/ca-certificates.crt"


def _api(base: str, token: str, method: str, path: str, body: object = None) -> object:
    request = urllib.request.Request(f"https://{base}{path}", method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"token {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, context=ssl.create_default_context(cafile=CA), timeout=60) as answer:
        text = answer.read()
    return json.loads(text) if text else None


def run(base: str, token: str, kernel_name: str, code: str) -> str:
    kernel = _api(base, token, "POST", "/api/kernels", {"name": kernel_name})
    assert isinstance(kernel, dict)
    try:
        ws = websocket.create_connection(f"wss://{base}/api/kernels/{kernel['id']}/channels",
                                         header=[f"Authorization: token {token}"], sslopt={"ca_certs": CA},
                                         timeout=120)
        msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
        ws.send(json.dumps({
            "header": {"msg_id": msg_id, "session": session, "username": "kernel_exec", "msg_type": "execute_request",
                       "version": "5.3", "date": ""},
            "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
            "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                        "allow_stdin": False, "stop_on_error": True},
        }))
        out: list[str] = []
        while True:
            message = json.loads(ws.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind, content = message["msg_type"], message["content"]
            if kind == "stream":
                out.append(content["text"])
            elif kind in ("execute_result", "display_data"):
                out.append(content["data"].get("text/plain", ""))
            elif kind == "error":
                sys.stderr.write("\n".join(content["traceback"]) + "\n")
                raise SystemExit(1)
            elif kind == "status" and content["execution_state"] == "idle":
                break
        ws.close()
        return "".join(out)
    finally:
        _api(base, token, "DELETE", f"/api/kernels/{kernel['id']}")


if __name__ == "__main__":
    print(run(sys.argv[1], os.environ["JUPYTER_TOKEN"], sys.argv[2], sys.argv[3]), end="")
