"""The linters, as the suite's first tests: ruff, mypy, ansible-lint (production profile, offline:
.ansible-lint) and yamllint (.yamllint) on the repository, each with no finding.

Tests rather than steps before pytest: the shared environment's deploy and the Molecule scenarios
start when collection ends (tests/e2e/conftest.py, tests/molecule/conftest.py), so the linters run
beside them instead of delaying them by a minute and a half, and the timing table gives each its row
(tier lint). `ruff check ...`, `mypy`, `ansible-lint` or `yamllint .` run alone the same way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
#: Each linter's command line, run from the repository's root with its configuration there.
LINTERS = {
    "ruff": ["ruff", "check", "platform_ctl", "do_emulator", "tests", "bench", "pipelines", "molecule"],
    "mypy": ["mypy"],
    "ansible-lint": ["ansible-lint"],
    "yamllint": ["yamllint", "."],
}


@pytest.mark.parametrize("linter", LINTERS)
def test_no_finding(linter: str) -> None:
    argv = LINTERS[linter]
    done = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=900, check=False)
    said = f"{done.stdout[-8000:]}\n{done.stderr[-4000:]}"
    assert done.returncode == 0, f"{' '.join(argv)}: exit {done.returncode}\n{said}"
