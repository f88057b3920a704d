"""The golden path, run on the Trino coordinator by test_golden_path.py: python3 standard library and curl.

Reads a JSON object from stdin: {"trino_url", "password", "run"}. The S3 credentials are Trino's own,
read from /etc/trino (so it runs as root); every secret reaches curl through its config on stdin,
never through a command line. Prints one JSON object: what each step saw.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

ETC = "/etc/trino"


def _properties(path: str) -> dict[str, str]:
    values = {}
    with open(path, encoding="utf-8") as handle:
        for raw in handle:
            line = raw.strip()
            if line and not line.startswith("#") and "=" in line:
                key, value = line.split("=", 1)
                values[key.strip()] = value.strip()
    return values


def _curl(config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "30", "-K", "-", *args], input=config, text=True,
                          capture_output=True, check=False)


def object_round_trip(run: str) -> dict[str, object]:
    """PUT an object into the warehouse bucket with Trino's S3 user, GET it back, DELETE it, GET a 404."""
    catalog = _properties(f"{ETC}/catalog/iceberg.properties")
    secret = _properties(f"{ETC}/trino.env")["TRINO_ICEBERG_S3_SECRET_KEY"]
    config = f'user = "{catalog["s3.aws-access-key"]}:{secret}"\n'
    sign = f"aws:amz:{catalog['s3.region']}:s3"
    url = f"{catalog['s3.endpoint'].rstrip('/')}/warehouse/platform-checks/{run}.txt"
    body = f"golden path {run}\n"
    seen: dict[str, object] = {"url": url}
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as upload:
        upload.write(body)
        upload.flush()
        put = _curl(config, "--aws-sigv4", sign, "-o", "/dev/null", "-w", "%{http_code}", "-T", upload.name, url)
    seen["put"] = put.stdout or put.stderr.strip()
    got = _curl(config, "--aws-sigv4", sign, "-w", "\n%{http_code}", url)
    content, _, code = got.stdout.rpartition("\n")
    seen["get"] = code
    seen["same_bytes"] = code == "200" and content == body
    delete = _curl(config, "--aws-sigv4", sign, "-X", "DELETE", "-o", "/dev/null", "-w", "%{http_code}", url)
    seen["delete"] = delete.stdout
    after = _curl(config, "--aws-sigv4", sign, "-o", "/dev/null", "-w", "%{http_code}", url)
    seen["get_after_delete"] = after.stdout
    return seen


class TrinoError(Exception):
    pass


def query(url: str, password: str, sql: str) -> list[list]:
    """One statement through Trino's client protocol over verified HTTPS, following nextUri to the end."""
    auth = base64.b64encode(f"admin:{password}".encode()).decode()
    headers = {"X-Trino-User": "admin", "Authorization": f"Basic {auth}"}
    request = urllib.request.Request(f"{url}/v1/statement", data=sql.encode(), headers=headers, method="POST")
    rows: list[list] = []
    deadline = time.monotonic() + 120
    while True:
        with urllib.request.urlopen(request, timeout=60) as response:  # the system trust store holds the CA
            document = json.load(response)
        rows += document.get("data", [])
        if "error" in document:
            error = document["error"]
            raise TrinoError(f"{sql!r}: {error.get('errorName')}: {error.get('message')}")
        if "nextUri" not in document:
            return rows
        if time.monotonic() > deadline:
            raise TrinoError(f"{sql!r}: no answer within 120 s")
        request = urllib.request.Request(document["nextUri"], headers=headers)


def table_round_trip(url: str, password: str, run: str) -> dict[str, object]:
    """CREATE an Iceberg table, INSERT a row, SELECT it back, list its Parquet file in MinIO, DROP it."""
    table = f"iceberg.platform_checks.golden_{run}"
    seen: dict[str, object] = {"table": table}
    query(url, password, "CREATE SCHEMA IF NOT EXISTS iceberg.platform_checks"
                         " WITH (location = 's3://warehouse/platform-checks/tables')")
    query(url, password, f"CREATE TABLE {table} (id bigint, note varchar) WITH (format = 'PARQUET')")
    try:
        query(url, password, f"INSERT INTO {table} VALUES (1, '{run}')")
        seen["rows"] = query(url, password, f"SELECT id, note FROM {table}")
        seen["files"] = [row[0] for row in query(url, password,
                                                 f'SELECT file_path FROM iceberg.platform_checks."golden_{run}$files"')]
    finally:
        query(url, password, f"DROP TABLE {table}")
    seen["dropped"] = not query(url, password, f"SHOW TABLES FROM iceberg.platform_checks LIKE 'golden_{run}'")
    return seen


def main() -> None:
    given = json.load(sys.stdin)
    seen: dict[str, object] = {"object": object_round_trip(given["run"])}
    try:
        seen["table"] = table_round_trip(given["trino_url"], given["password"], given["run"])
    except (TrinoError, OSError) as error:
        seen["table"] = {"error": str(error)}
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
