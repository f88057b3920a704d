"""What a user sees when the API says no: 401, 422 and 429, each one clear line; a 429 is retried."""

from __future__ import annotations

import os
from unittest import mock

import pytest
from do_harness import TOKEN, EmulatorProcess, Project, do_spec, make_project

from platform_ctl.environment import Environment
from platform_ctl.events import Event
from platform_ctl.paths import Project as PlatformProject

ENV = "do-err"


@pytest.fixture(scope="module")
def project(emulator: EmulatorProcess, tmp_path_factory: pytest.TempPathFactory) -> Project:
    """One environment for the module, as a user's: each failed deploy leaves what it created to the next."""
    return make_project(tmp_path_factory.mktemp("project"),
                        do_spec(ENV, emulator.url, "10.45.0.0/24", allow_volume_deletion=True))


@pytest.fixture(autouse=True)
def no_faults(emulator: EmulatorProcess) -> None:
    emulator.clear_faults()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_no_token_is_one_line_before_anything_happens(project: Project, emulator: EmulatorProcess) -> None:
    before = len(emulator.requests())
    done = project.cli("deploy", ENV, token=None)
    assert done.returncode == 3
    assert _error_lines(done.stderr) == [
        f"error: DIGITALOCEAN_TOKEN is not set: export a DigitalOcean API token with read and write scope (or "
        f"DIGITALOCEAN_ACCESS_TOKEN) before touching {ENV}"
    ]
    assert len(emulator.requests()) == before
    assert not (project.root / ".platform" / ENV).exists()


def test_a_refused_token_is_one_clear_message(project: Project) -> None:
    done = project.cli("deploy", ENV, token="not-the-token")
    assert done.returncode == 3, done.stderr
    lines = _error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: DigitalOcean refused the API token (401 Unable to authenticate you.) at ")
    assert lines[0].endswith(": set DIGITALOCEAN_TOKEN to a valid token with write scope")


def test_a_bad_size_slug_is_one_clear_message(project: Project, emulator: EmulatorProcess) -> None:
    # The spec only allows sizes DigitalOcean lists, so this 422 is the API refusing one (as it does
    # for a size not offered in a region); the emulator is told to answer as the API would.
    emulator.fault(method="POST", path="^/?v2/droplets$", status=422, times=100,
                   message="You specified an invalid size for Droplet creation.")
    done = project.cli("deploy", ENV)
    emulator.clear_faults()
    assert done.returncode == 4, done.stderr
    lines = _error_lines(done.stderr)
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: DigitalOcean refused POST /v2/droplets (module.")
    assert lines[0].endswith("(422): You specified an invalid size for Droplet creation.; fix the value in the "
                             "environment's platform.yml")


def test_rate_limiting_is_retried_then_reported(project: Project, emulator: EmulatorProcess) -> None:
    env = Environment.load(PlatformProject(project.root), ENV)
    events: list[Event] = []
    emulator.fault(method="POST", path="^/?v2/droplets$", status=429, times=2, retry_after=1,
                   message="API rate limit exceeded.")
    with mock.patch.dict(os.environ, {"DIGITALOCEAN_TOKEN": TOKEN}):
        hosts = env.backend.apply(env.spec, env.access(create=True), events.append)
        retries = [e.message for e in events if e.message.startswith("DigitalOcean rate limit (429): retrying")]
        assert len(retries) >= 1, [e.message for e in events if e.kind == "message"]
        assert len(hosts) == len(env.spec.hosts())
        limited = [r for r in emulator.requests() if r["status"] == 429]
        assert len(limited) == 2
        # Still limited after every retry: one clear message.
        emulator.fault(method="POST", path="^/?v2/droplets$", status=429, times=1000, retry_after=1,
                       message="API rate limit exceeded.")
        spec = project.spec()
        spec["groups"]["trino_worker"]["count"] = 2
        project.write_spec(spec)
        done = project.cli("deploy", ENV)
        emulator.clear_faults()
        assert done.returncode == 4, done.stderr
        lines = _error_lines(done.stderr)
        assert len(lines) == 1, done.stderr
        assert lines[0].startswith("error: DigitalOcean rate limit (429 API rate limit exceeded.) at POST "
                                   "/v2/droplets (module.")
        assert lines[0].endswith("still limited after 4 retries; wait a minute and deploy again")
        env.backend.destroy(env.spec, lambda _e: None, with_data=True)
