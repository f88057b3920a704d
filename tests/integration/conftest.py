"""Each integration test module gets its own DigitalOcean API emulator (no droplets materialised)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from do_harness import EmulatorProcess, start_emulator, stop_emulator


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatorProcess]:
    directory = tmp_path_factory.mktemp("emulator")
    running = start_emulator(directory, f"it{os.getpid()}")
    try:
        yield running
    finally:
        stop_emulator(running)
