"""The platform works for a user, not only its services run: a small write and read through the real path.

On the Trino coordinator (golden_path.py, run there as root by Ansible's command module): an object
PUT into the warehouse bucket with Trino's own S3 credentials comes back byte for byte and is gone
after DELETE; an Iceberg table created through Trino as admin takes a row, returns it, has its
Parquet file under the warehouse bucket, and is dropped. The admin password travels on the module's
stdin, never on a command line. The apps' health is test_dagster.py's and test_jupyterlab.py's.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

testinfra_hosts = ["ansible://trino_coordinator"]

SCRIPT = (Path(__file__).parent / "golden_path.py").read_text(encoding="utf-8")


def _golden_path(host, hostvars) -> dict:
    run = uuid.uuid4().hex[:12]
    given = {"run": run, "password": hostvars["vault_trino_admin_password"],
             "trino_url": f"https://{hostvars['inventory_hostname']}.{hostvars['platform_domain']}:8443"}
    result = host.ansible("command", json.dumps({"argv": ["python3", "-c", SCRIPT], "stdin": json.dumps(given)}),
                          check=False, become=True)
    assert result.get("rc") == 0, f"the golden path did not finish: {result.get('stderr') or result.get('msg')}"
    seen = json.loads(result["stdout"])
    seen["run"] = run
    return seen


def test_an_object_and_an_iceberg_row_go_in_and_come_back_out(host, hostvars):
    seen = _golden_path(host, hostvars)
    run, stored, table = seen["run"], seen["object"], seen["table"]
    assert (stored["put"], stored["get"], stored["same_bytes"]) == ("200", "200", True), \
        f"object {stored['url']} with Trino's S3 user: {stored}"
    assert (stored["delete"], stored["get_after_delete"]) == ("204", "404"), f"object {stored['url']}: {stored}"
    assert "error" not in table, f"Iceberg through Trino as admin: {table['error']}"
    assert table["rows"] == [[1, run]], f"{table['table']} returned {table['rows']}"
    assert table["files"], f"{table['table']} has no data file"
    assert all(path.startswith("s3://warehouse/platform-checks/tables/") and path.endswith(".parquet")
               for path in table["files"]), table["files"]
    assert table["dropped"] is True, f"{table['table']} still listed after DROP TABLE"
