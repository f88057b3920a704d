#!/usr/bin/env bash
# README command 1: set up this machine and bring up the local platform, verified.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/platform-ctl deploy local
.venv/bin/platform-ctl verify local
.venv/bin/platform-ctl status local
