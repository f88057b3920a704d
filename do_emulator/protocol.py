"""The API's plumbing shared by every route: requests, replies, pagination, injected faults, rate limits."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from do_emulator.state import ApiError, Json, invalid

DEFAULT_RATE_LIMIT = 5000
MAX_PER_PAGE = 200
DEFAULT_PER_PAGE = 20


class RateLimiter:
    """Fixed one-minute windows per token: ``limit`` requests, then 429 until the window ends."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._lock = threading.Lock()
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, count: bool = True) -> tuple[bool, int, float]:
        """Count one request; returns (allowed, remaining, reset as epoch seconds)."""
        with self._lock:
            now = time.time()
            start, used = self._windows.get(key, (now, 0))
            if now - start >= self.window:
                start, used = now, 0
            allowed = used < self.limit
            if allowed and count:
                used += 1
            self._windows[key] = (start, used)
            return allowed, max(0, self.limit - used), start + self.window


@dataclass
class Fault:
    path: re.Pattern[str]
    status: int
    method: str | None = None
    times: int | None = 1
    retry_after: int | None = None
    message: str | None = None
    error_id: str | None = None
    delay: float = 0.0
    hits: int = 0

    def describe(self) -> Json:
        return {"method": self.method, "path": self.path.pattern, "status": self.status, "times": self.times,
                "retry_after": self.retry_after, "message": self.message, "id": self.error_id,
                "delay": self.delay, "hits": self.hits}


def parse_fault(body: Any) -> Fault:
    if not isinstance(body, dict):
        raise ApiError(400, "a fault is an object with at least path and status")
    try:
        path = re.compile(str(body["path"]))
        status = int(body["status"])
    except (KeyError, ValueError, re.error) as exc:
        raise ApiError(400, f"a fault needs a valid path regex and status: {exc}") from None
    if not 100 <= status <= 599:
        raise ApiError(400, "status must be an HTTP status")
    times = body.get("times", 1)
    retry = body.get("retry_after")
    return Fault(
        path=path, status=status, method=str(body["method"]).upper() if body.get("method") else None,
        times=None if times is None else int(times), retry_after=None if retry is None else int(retry),
        message=body.get("message"), error_id=body.get("id"), delay=float(body.get("delay") or 0),
    )



@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    body: Any
    base: str  # scheme://host[:port] as the client addressed us
    params: tuple[str, ...] = ()
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Json:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise invalid("the request body must be a JSON object")
        return self.body


Reply = tuple[int, Json | list[Json] | None]
Handler = Callable[[Request], Reply]


def paginate(req: Request, key: str, items: list[Json], extra: Json | None = None) -> Reply:
    try:
        per_page = min(MAX_PER_PAGE, max(1, int(req.query.get("per_page") or DEFAULT_PER_PAGE)))
        page = max(1, int(req.query.get("page") or 1))
    except ValueError:
        raise invalid("page and per_page must be integers") from None
    total = len(items)
    last = max(1, math.ceil(total / per_page))
    others = {k: v for k, v in req.query.items() if k not in ("page", "per_page")}

    def url(n: int) -> str:
        return f"{req.base}{req.path}?{urlencode({**others, 'page': n, 'per_page': per_page})}"

    pages: Json = {}
    if page > 1:
        pages.update(first=url(1), prev=url(min(page - 1, last)))
    if page < last:
        pages.update(next=url(page + 1), last=url(last))
    chunk = items[(page - 1) * per_page: page * per_page]
    body: Json = {key: chunk, "links": {"pages": pages} if pages else {}, "meta": {"total": total}}
    body.update(extra or {})
    return 200, body


SEG = r"([^/]+)"


def empty(call: Callable[[Request], object]) -> Handler:
    """A handler answering 204 with no body after ``call``."""

    def handler(req: Request) -> Reply:
        call(req)
        return 204, None

    return handler



def default_message(status: int) -> str:
    return {
        429: "API rate limit exceeded.", 401: "Unable to authenticate you.", 404: "The resource you were accessing "
        "could not be found.", 500: "Server was unable to give you a response.",
        503: "Service is temporarily unavailable.", 422: "The request could not be processed.",
    }.get(status, "Injected fault.")
