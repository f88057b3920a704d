"""The HTTP server side: reads a request, authenticates, rate-limits, injects faults, answers (stdlib only)."""

from __future__ import annotations

import ipaddress
import json
import logging
import math
import re
import socket
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from do_emulator.protocol import Fault, Reply, Request, default_message
from do_emulator.state import ApiError, Json, not_found

if TYPE_CHECKING:
    from do_emulator.server import Emulator

log = logging.getLogger("do_emulator")


class Server6(ThreadingHTTPServer):
    address_family = socket.AF_INET6


def _normalize(raw_path: str) -> str:
    path = raw_path if raw_path.startswith("/") else "/" + raw_path
    path = re.sub(r"/{2,}", "/", path)
    at = path.find("/v2/")
    if at > 0:
        path = path[at:]
    elif path.endswith("/v2") and at < 0:
        path = "/v2"
    return path.rstrip("/") or "/"


def _loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


class RequestHandler(BaseHTTPRequestHandler):
    emulator: Emulator
    protocol_version = "HTTP/1.1"

    def version_string(self) -> str:
        return "do-emulator"

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self) -> None:
        emulator = self.emulator
        request_id = str(uuid.uuid4())
        raw = self._read_body()
        split = urlsplit(self.path if self.path.startswith("/") else "/" + self.path)
        path = _normalize(split.path)
        headers: dict[str, str] = {"x-request-id": request_id}
        try:
            status, payload = self._answer(path, split.query, raw, headers)
        except ApiError as exc:
            status = exc.status
            payload = {"id": exc.error_id, "message": exc.message, "request_id": request_id}
            headers.update(exc.headers)
        except Exception as exc:
            log.exception("%s %s failed", self.command, path)
            status = 500
            payload = {"id": "server_error", "message": f"emulator error: {exc.__class__.__name__}: {exc}",
                       "request_id": request_id}
        if "ratelimit-limit" not in headers:
            _, remaining, reset = emulator.limiter.hit("", count=False)
            headers.update({"ratelimit-limit": str(emulator.limiter.limit),
                            "ratelimit-remaining": str(remaining), "ratelimit-reset": str(int(reset))})
        # Logged before answering: a client that has its answer must find the request in the log.
        if not path.startswith("/_emulator"):
            emulator.record(self.command, path, split.query, status)
        self._send(status, payload, headers)

    def _answer(self, path: str, query: str, raw: bytes, headers: dict[str, str]) -> Reply:
        """Authenticate, rate-limit, inject faults, then route; raises ApiError for error answers."""
        emulator = self.emulator
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            raise ApiError(400, "The request body is not valid JSON.") from None
        host = self.headers.get("Host") or f"{emulator.host}:{emulator.port}"
        req = Request(self.command, path, dict(parse_qsl(query, keep_blank_values=True)), body, f"http://{host}",
                      headers={k.lower(): v for k, v in self.headers.items()})
        if path == "/_emulator" or path.startswith("/_emulator/"):
            if not _loopback(self.client_address[0]):
                raise not_found()
            return emulator.control(req)
        if path != "/v2" and not path.startswith("/v2/"):
            raise not_found()
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        token = token.strip()
        allowed, remaining, reset = emulator.limiter.hit(token if token in emulator.tokens else "")
        headers.update({"ratelimit-limit": str(emulator.limiter.limit),
                        "ratelimit-remaining": str(remaining), "ratelimit-reset": str(int(reset))})
        if scheme.lower() != "bearer" or token not in emulator.tokens:
            raise ApiError(401, "Unable to authenticate you.")
        if not allowed:
            raise ApiError(429, "API rate limit exceeded.",
                           headers={"Retry-After": str(max(1, math.ceil(reset - time.time())))})
        fault = emulator.take_fault(self.command, path)
        if fault is not None:
            return self._fault(fault, headers)
        return emulator.dispatch(req)

    @staticmethod
    def _fault(fault: Fault, headers: dict[str, str]) -> Reply:
        if fault.delay:
            time.sleep(fault.delay)
        if fault.status == 429:
            headers["ratelimit-remaining"] = "0"
        if fault.status < 400:
            return fault.status, {}
        extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
        raise ApiError(fault.status, fault.message or default_message(fault.status), error_id=fault.error_id,
                       headers=extra)

    def _send(self, status: int, payload: Json | list[Json] | None, headers: dict[str, str]) -> None:
        data = b"" if status == 204 or payload is None else json.dumps(payload).encode()
        self.send_response(status)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)



for _verb in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"):
    setattr(RequestHandler, f"do_{_verb}", RequestHandler._handle)
