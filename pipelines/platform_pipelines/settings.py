"""Where the example pipelines reach Trino and the landing bucket: the code server's environment.

roles/dagster writes these into /etc/dagster/pipelines.env (root:dagster 0640) from the inventory
and the vault; a variable missing leaves its default, and an empty PLATFORM_LANDING_ENDPOINT turns
the landing sensor off (an environment without MinIO, such as the role's Molecule scenario).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import boto3
import trino
from botocore.config import Config


@dataclass(frozen=True)
class Settings:
    trino_host: str
    trino_port: int
    trino_user: str
    trino_password: str
    ca_bundle: str
    landing_endpoint: str
    landing_bucket: str
    landing_prefix: str
    landing_access_key: str
    landing_secret_key: str
    #: Where each dbt invocation writes its target directory (the code itself is read-only).
    dbt_runs_dir: Path
    #: Where the deploy's `dbt parse` wrote the manifest (relative: to the dbt project).
    dbt_manifest_dir: Path

    @classmethod
    def from_environment(cls) -> Settings:
        env = os.environ.get
        return cls(
            trino_host=env("PLATFORM_TRINO_HOST", "localhost"),
            trino_port=int(env("PLATFORM_TRINO_PORT", "8443")),
            trino_user=env("PLATFORM_TRINO_USER", "pipelines"),
            trino_password=env("PLATFORM_TRINO_PASSWORD", ""),
            ca_bundle=env("PLATFORM_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt"),
            landing_endpoint=env("PLATFORM_LANDING_ENDPOINT", ""),
            landing_bucket=env("PLATFORM_LANDING_BUCKET", "landing"),
            landing_prefix=env("PLATFORM_LANDING_PREFIX", "orders/"),
            landing_access_key=env("PLATFORM_LANDING_ACCESS_KEY", ""),
            landing_secret_key=env("PLATFORM_LANDING_SECRET_KEY", ""),
            dbt_runs_dir=Path(env("PLATFORM_DBT_RUNS_DIR", "/srv/dagster/dbt")),
            dbt_manifest_dir=Path(env("PLATFORM_DBT_MANIFEST_DIR", "target")),
        )

    def trino(self) -> trino.dbapi.Connection:
        """A connection to Trino's iceberg catalog as the pipelines user, TLS verified."""
        return trino.dbapi.connect(
            host=self.trino_host, port=self.trino_port, user=self.trino_user, http_scheme="https",
            auth=trino.auth.BasicAuthentication(self.trino_user, self.trino_password), verify=self.ca_bundle,
            catalog="iceberg", request_timeout=300)

    def s3(self):
        """An S3 client of the landing bucket (the landing user may list and read it, nothing else)."""
        return boto3.client(
            "s3", endpoint_url=self.landing_endpoint, aws_access_key_id=self.landing_access_key,
            aws_secret_access_key=self.landing_secret_key, region_name="us-east-1", verify=self.ca_bundle,
            config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                          connect_timeout=10, read_timeout=60))

    def landing_objects(self) -> dict[str, str]:
        """The CSV objects under the landing prefix: key -> ETag."""
        objects: dict[str, str] = {}
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=self.landing_bucket,
                                                                     Prefix=self.landing_prefix)
        for page in pages:
            for item in page.get("Contents", []):
                if item["Key"].endswith(".csv"):
                    objects[item["Key"]] = item["ETag"].strip('"')
        return objects
