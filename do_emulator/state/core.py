"""What every part of the emulated account shares: the error answer, field checks, limits, names.

Records are kept in their API shape; keys starting with ``_`` are the emulator's own bookkeeping
(the droplet's user data, its resolved SSH keys, ...) and are stripped by :func:`public`.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

Json = dict[str, Any]

# --------------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------------

ERROR_IDS = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
    409: "conflict", 412: "precondition_failed", 422: "unprocessable_entity", 429: "too_many_requests",
    500: "server_error", 502: "bad_gateway", 503: "service_unavailable", 504: "gateway_timeout",
}  # fmt: skip
NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."
PENDING_EVENT = "Droplet already has a pending event."


class ApiError(Exception):
    """An answer other than 2xx, in DigitalOcean's error shape ``{"id", "message", "request_id"}``."""

    def __init__(self, status: int, message: str, error_id: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_id = error_id or ERROR_IDS.get(status, "error")
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(422, message)


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND_MESSAGE)


# --------------------------------------------------------------------------------------------------
# Limits and names shared by several resources
# --------------------------------------------------------------------------------------------------

MAX_VOLUMES_PER_DROPLET = 7
VOLUME_LIMIT = 100
TAG_NAME = re.compile(r"^[a-zA-Z0-9:_-]{1,255}$")


# --------------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------------


def now() -> str:
    """RFC 3339 in UTC, the form godo's time.Time and Timestamp decode."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def public(record: Json) -> Json:
    """A record without the emulator's ``_`` bookkeeping keys, deep-copied."""
    return {k: copy.deepcopy(v) for k, v in record.items() if not k.startswith("_")}


def int_field(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{field} must be an integer")
    return value


def str_field(body: Json, field: str, required: bool = False) -> str:
    value = body.get(field)
    if value is None or value == "":
        if required:
            raise invalid(f"{field} is required")
        return ""
    if not isinstance(value, str):
        raise invalid(f"{field} must be a string")
    return value


def str_list(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(f"{field} must be a list of strings")
    return list(value)
