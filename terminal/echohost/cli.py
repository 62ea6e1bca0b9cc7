"""``acqsim echo-host``: a canned-answer POS host to point ``acqsim load`` (or any terminal) at.

    acqsim echo-host [--host 127.0.0.1] [--port 0] [--config FILE]

Prints ``READY echo-host HOST:PORT`` once listening (port 0: a free port, printed), then serves until
interrupted. What it answers: ``terminal/echohost/core.py`` and docs/terminal.md.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import anyio

from acqkit.config import ConfigError, load_config
from acqkit.runner import announce, run_service
from terminal.echohost.server import echo_host_for, serve_echo_host


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default 0: any free port)")
    parser.add_argument("--config", type=Path, help="configuration whose terminals' TMKs the sign-on uses")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"acqsim echo-host: {exc}", file=sys.stderr)
        return 2
    host = echo_host_for(config)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            bound = await tg.start(functools.partial(serve_echo_host, host, args.host, args.port))
            announce("echo-host", args.host, bound)

    return run_service(main)
