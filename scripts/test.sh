#!/usr/bin/env bash
# README command 2: set up this machine and run the whole test suite:
# lint (ruff, mypy), unit tests, Molecule scenarios, end-to-end tests on the local environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
echo "== ruff"; ruff check platform_ctl tests bench
echo "== mypy"; mypy
echo "== leftovers"; python tests/leftovers.py
echo "== pytest"; pytest "$@"
