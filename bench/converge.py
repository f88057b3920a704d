"""No-op converge time of the base play: the project's ansible.cfg against a stock one.

Both are measured side by side in one run, on the same already-deployed hosts, alternating
(project, stock, project, stock, ...) so that drift of the machine hits both alike. The first run
of each is a warm-up (it opens the SSH masters) and is not counted.

    .venv/bin/python bench/converge.py [ENV] [--rounds N]

Prints each run, the median of each configuration and their ratio (stock / project).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from platform_ctl.environment import Environment
from platform_ctl.events import discard
from platform_ctl.paths import Project
from platform_ctl.runner import ANSIBLE_CFG, run_playbook


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("env", nargs="?", default="local")
    parser.add_argument("--rounds", type=int, default=3, help="counted runs per configuration")
    args = parser.parse_args()

    env = Environment.load(Project.discover(), args.env)
    if not env.inventory.exists():
        print(f"{args.env} is not deployed: run `platform-ctl deploy {args.env}` first", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        stock = Path(tmp) / "ansible.cfg"
        stock.write_text("# stock Ansible: every setting at its default\n[defaults]\n")
        configs = {"project": ANSIBLE_CFG, "stock": stock}
        times: dict[str, list[float]] = {name: [] for name in configs}
        hosts = len(env.spec.hosts())
        print(f"no-op converge of base.yml on {hosts} hosts of {args.env!r}, {args.rounds} counted rounds")
        for round_no in range(args.rounds + 1):
            for name, cfg in configs.items():
                started = time.monotonic()
                result = run_playbook("base.yml", env.inventory, env.state_dir, discard, "bench",
                                      vault_password_file=env.vault_password_file(), config=cfg)
                seconds = time.monotonic() - started
                label = "warm-up" if round_no == 0 else f"round {round_no}"
                print(f"  {label:8} {name:8} {seconds:7.2f}s  changed={result.changed}")
                if result.changed:
                    print("  the play was not a no-op: converge the environment first", file=sys.stderr)
                    return 1
                if round_no:
                    times[name].append(seconds)
    project, stock_s = statistics.median(times["project"]), statistics.median(times["stock"])
    print(f"median project ansible.cfg: {project:.2f}s")
    print(f"median stock ansible.cfg:   {stock_s:.2f}s")
    print(f"ratio stock/project: {stock_s / project:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
