#!/usr/bin/env bash
# README command 2: set up this machine and run the whole test suite:
# lint (ruff, mypy, ansible-lint, yamllint), unit tests, Molecule scenarios, end-to-end tests on the
# local environment, all under pytest.
# Every run ends with its timing table (tests/timing.py), also when it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

timings=$(mktemp -d /tmp/platform-ctl-timings.XXXXXX)
export PLATFORM_CTL_TIMINGS=$timings
# The machine's CPU counters every 5 s: the table's cpu column (how busy the cores were per row).
( while :; do printf '%s %s\n' "$(date +%s.%N)" "$(head -n1 /proc/stat)"; sleep 5; done ) >"$timings/cpu.log" &
sampler=$!
finish() {
  kill "$sampler" 2>/dev/null || true
  python3 tests/timing.py report "$timings" || true
}
trap finish EXIT

# step TIER ITEM COMMAND...: run COMMAND and record its wall time as a row of the table.
step() {
  local tier=$1 item=$2 start rc=0
  shift 2
  start=$(date +%s.%N)
  "$@" || rc=$?
  printf '{"tier": "%s", "item": "%s", "start": %s, "end": %s%s}\n' "$tier" "$item" "$start" "$(date +%s.%N)" \
    "$([ $rc = 0 ] || echo ', "outcome": "failed"')" >>"$timings/spans.jsonl"
  return $rc
}

step setup "scripts/setup.sh" bash scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
# The linters (ruff, mypy, ansible-lint, yamllint) are pytest's first tests (tests/lint): they run
# beside the shared environment's deploy and the Molecule scenarios, which start when collection ends.
echo "== leftovers"; step setup "tests/leftovers.py" python tests/leftovers.py
echo "== pytest"; pytest "$@"
