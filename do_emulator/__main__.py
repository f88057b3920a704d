"""``python -m do_emulator``: serve the DigitalOcean API emulator, or clean up after one.

    python -m do_emulator --listen 127.0.0.1:0 --token TOKEN [--token TOKEN2 ...]
        [--state-file PATH] [--materialize --name NAME [--data-dir DIR]] [--droplet-limit N]
        [--rate-limit N] [--port-file PATH] [--verbose]
    python -m do_emulator --cleanup --name NAME [--data-dir DIR] [--state-file PATH]

Once it listens it prints its base URL (``http://127.0.0.1:PORT``, the provider's
``api_endpoint``) on stdout and, with ``--port-file``, writes it there atomically. It runs until
SIGINT or SIGTERM. Tokens may also come from ``DIGITALOCEAN_TOKEN`` when no ``--token`` is given.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
import tempfile
import threading
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


def _listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise argparse.ArgumentTypeError(f"{value!r}: use 1-31 characters of a-z, 0-9 and '-', starting with a letter")
    return value


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m do_emulator",
                                description="DigitalOcean API v2 emulator for OpenTofu rehearsals and tests.")
    p.add_argument("--listen", type=_listen, default=("127.0.0.1", 0), metavar="HOST:PORT",
                   help="address to listen on (default 127.0.0.1:0, any free port)")
    p.add_argument("--token", action="append", default=[], help="an API token that authenticates (repeatable)")
    p.add_argument("--state-file", type=Path, help="JSON state, loaded at start and saved after every change "
                   "(default with --materialize: DATA_DIR/state.json; else in memory only)")
    p.add_argument("--materialize", action="store_true", help="make each droplet a local container, each VPC a "
                   "Docker network, each volume a loop device")
    p.add_argument("--name", type=_name, help="instance name, labels its containers and networks "
                   "(needed by --materialize and --cleanup)")
    p.add_argument("--data-dir", type=Path, help="where volumes and hosts files live "
                   "(default ~/.cache/platform-ctl/emulator/NAME)")
    p.add_argument("--droplet-limit", type=_positive, default=25, help="the account's droplet limit (default 25)")
    p.add_argument("--rate-limit", type=_positive, default=5000, help="requests per minute and token (default 5000)")
    p.add_argument("--port-file", type=Path, help="write the base URL here once listening")
    p.add_argument("--cleanup", action="store_true", help="remove every container, network, loop device and file "
                   "of instance --name, then exit")
    p.add_argument("--verbose", "-v", action="store_true", help="log every request on stderr")
    return p


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s emulator %(levelname)s %(message)s")
    from do_emulator.materialize import Materializer, data_dir_for

    if args.cleanup:
        if not args.name:
            parser().error("--cleanup needs --name")
        extra = (args.state_file,) if args.state_file else ()
        for line in Materializer.cleanup(args.name, args.data_dir, extra):
            print(f"removed {line}")
        return 0
    tokens = args.token or ([os.environ["DIGITALOCEAN_TOKEN"]] if os.environ.get("DIGITALOCEAN_TOKEN") else [])
    if not tokens:
        parser().error("give at least one --token (or set DIGITALOCEAN_TOKEN)")

    from do_emulator.server import Emulator

    materializer = None
    state_file = args.state_file
    if args.materialize:
        if not args.name:
            parser().error("--materialize needs --name")
        data_dir = args.data_dir or data_dir_for(args.name)
        materializer = Materializer(args.name, data_dir)
        materializer.prepare()
        state_file = state_file or data_dir / "state.json"
    host, port = args.listen
    emulator = Emulator(tokens, materializer=materializer, state_file=state_file, host=host, port=port,
                        droplet_limit=args.droplet_limit, rate_limit=args.rate_limit)
    url = emulator.start()
    if args.port_file:
        _write_atomically(args.port_file, url + "\n")
    print(url, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
