"""The bearer token Prometheus sends to MinIO's metrics endpoints.

What ``mc admin prometheus generate`` prints (minio/mc ``cmd/utils.go``, ``getPrometheusToken``):
a JWT signed HS512 with the secret key of the access key it names, claims ``exp``, ``sub`` (the
access key) and ``iss`` ("prometheus"). MinIO looks the access key up, checks the signature with
its secret key, then asks its IAM whether that identity may ``admin:Prometheus``.

mc puts ``exp`` 100 years from now, so each run makes another token; here ``exp`` is a fixed
argument and the JSON is serialised the same way every time, so the same secret always gives the
same token and rewriting the token file is a no-op.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segment(value: dict[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":"), sort_keys=True).encode("utf-8"))


def minio_prometheus_token(secret_key: str, access_key: str, expires: int) -> str:
    """A MinIO Prometheus bearer token for ``access_key``, valid until the Unix time ``expires``."""
    if not access_key or not secret_key:
        raise ValueError("minio_prometheus_token needs an access key and its secret key")
    signing_input = _segment({"alg": "HS512", "typ": "JWT"}) + "." + _segment(
        {"exp": int(expires), "iss": "prometheus", "sub": access_key}
    )
    signature = hmac.new(secret_key.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha512).digest()
    return signing_input + "." + _b64url(signature)


class FilterModule:
    """Ansible filters of the prometheus role."""

    def filters(self) -> dict[str, Any]:
        return {"minio_prometheus_token": minio_prometheus_token}
