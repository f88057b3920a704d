"""`state: {backend: s3}` keeps the OpenTofu state in an S3-compatible bucket, with its lock object.

The bucket is a real MinIO server on loopback (the binary the minio role deploys), standing in for
DigitalOcean Spaces; the API is the emulator.
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest
from do_harness import TOKEN, EmulatorProcess, do_spec, make_project
from minio import Minio

from platform_ctl.artifacts import DEFAULTS, ensure
from platform_ctl.environment import Environment
from platform_ctl.paths import Project as PlatformProject

ENV = "do-rs"
BUCKET = "tofu-state"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def bucket(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data = tmp_path_factory.mktemp("minio")
    port = _free_port()
    credentials = {"AWS_ACCESS_KEY_ID": "state-admin", "AWS_SECRET_ACCESS_KEY": secrets.token_hex(16)}
    proc = subprocess.Popen(
        [str(ensure(DEFAULTS["minio"]).path), "server", str(data), "--address", f"127.0.0.1:{port}", "--quiet"],
        env={**os.environ, "MINIO_ROOT_USER": credentials["AWS_ACCESS_KEY_ID"],
             "MINIO_ROOT_PASSWORD": credentials["AWS_SECRET_ACCESS_KEY"]},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/minio/health/live", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        client = Minio(f"127.0.0.1:{port}", access_key=credentials["AWS_ACCESS_KEY_ID"],
                       secret_key=credentials["AWS_SECRET_ACCESS_KEY"], secure=False)
        client.make_bucket(BUCKET)
        yield f"http://127.0.0.1:{port}", credentials
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_state_lives_in_the_bucket_and_a_second_plan_reads_it(
    emulator: EmulatorProcess, bucket: tuple[str, dict[str, str]], tmp_path: Path,
) -> None:
    endpoint, credentials = bucket
    spec = do_spec(ENV, emulator.url, "10.47.0.0/24", allow_volume_deletion=True,
                   state={"backend": "s3", "bucket": BUCKET, "endpoint": endpoint, "lock": True})
    make_project(tmp_path, spec)
    client = Minio(endpoint.removeprefix("http://"), access_key=credentials["AWS_ACCESS_KEY_ID"],
                   secret_key=credentials["AWS_SECRET_ACCESS_KEY"], secure=False)
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN, **credentials}):
        env = Environment.load(PlatformProject(tmp_path), ENV)
        seen: set[str] = set()
        done = threading.Event()

        def watch() -> None:  # the objects in the bucket while OpenTofu runs
            while not done.is_set():
                seen.update(o.object_name for o in client.list_objects(BUCKET, recursive=True))
                time.sleep(0.2)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            env.backend.apply(env.spec, env.access(create=True), lambda _e: None)
        finally:
            done.set()
            watcher.join()
        assert f"platform-ctl/{ENV}.tfstate.tflock" in seen, seen
        workdir = env.state_dir / "tofu"
        assert not (workdir / "terraform.tfstate").exists()
        objects = {o.object_name: o.size for o in client.list_objects(BUCKET, recursive=True)}
        assert list(objects) == [f"platform-ctl/{ENV}.tfstate"], objects
        assert objects[f"platform-ctl/{ENV}.tfstate"] > 10_000  # 34 resources
        # A fresh working directory (another machine, or a lost .platform/) sees the same state.
        for item in workdir.iterdir():
            if item.name in (".terraform", "outputs.json"):
                subprocess.run(["rm", "-rf", str(item)], check=True)
        summary = env.backend.plan(env.spec, env.access(), lambda _e: None)
        assert summary.empty, summary.changes
        env.backend.destroy(env.spec, lambda _e: None, with_data=True)
    assert emulator.state()["droplets"] == []
    # The lock object is removed after each run; only the state remains.
    assert [o.object_name for o in client.list_objects(BUCKET, recursive=True)] == [f"platform-ctl/{ENV}.tfstate"]
