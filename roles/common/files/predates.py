#!/usr/bin/python3
"""Print "stale" when systemd unit SERVICE runs and started before one of PATHS last changed.

Usage: predates.py SERVICE PATH...; a directory stands for the regular files directly in it, DIR/**
for every regular file beneath it; a symbolic link counts when it was itself last pointed elsewhere,
and for what it points to.
Prints "stale", "current" or "not running". A handler notified by a run that was killed before
handlers ran is lost; this is how the next run knows the restart is still owed.
"""

import os
import subprocess
import sys


def main(service, paths):
    shown = subprocess.run(["systemctl", "show", service, "--timestamp=unix", "-p", "ActiveState",
                            "-p", "ExecMainStartTimestamp"], capture_output=True, text=True, check=True).stdout
    props = dict(line.split("=", 1) for line in shown.splitlines() if "=" in line)
    started = props.get("ExecMainStartTimestamp", "").lstrip("@")
    if props.get("ActiveState") != "active" or not started.isdigit():
        return "not running"
    files, links = [], []
    for path in paths:
        if path.endswith("/**"):
            for top, _, names in os.walk(path[:-3]):
                files += [os.path.join(top, name) for name in names]
            continue
        if os.path.islink(path):
            links.append(path)
        if os.path.isdir(path):
            files += [e.path for e in os.scandir(path) if e.is_file()]
        elif os.path.exists(path):
            files.append(path)
    changed = max([int(os.stat(f).st_mtime) for f in files if os.path.isfile(f)]
                  + [int(os.lstat(link).st_mtime) for link in links], default=0)
    return "stale" if int(started) < changed else "current"


if __name__ == "__main__":
    print(main(sys.argv[1], sys.argv[2:]))
