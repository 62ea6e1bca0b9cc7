"""``acqsim web``: the web view — a live sequence diagram of every message crossing a hop, each message
dissected on a click, a "try it" panel (purchase, balance, pre-auth, reversal, settlement, wrong PIN, bad MAC,
lost card) explained in English and Chinese, and the ledger's balances.

By default the services start in this process (free loopback ports, data in ``.acqsim/web``); ``--attach``
uses services already running as processes (``acqsim up``, or ``acqsim up --web`` which serves this view
itself) through the configuration's NAC address and trace folder. Prints ``READY web HOST:PORT`` and the URL.
Needs the ``web`` extra (Starlette, uvicorn); runs on asyncio (uvicorn's loop).
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path
from typing import Final

import anyio

from acqkit.config import AcqsimConfig, load_config
from acqkit.exitcodes import EXIT_OK, EXIT_USAGE
from acqkit.extras import require
from acqkit.runner import announce

#: Where ``acqsim web`` keeps its in-process services' stores and traces unless told otherwise.
DEFAULT_WEB_DATA_DIR: Final = Path(".acqsim") / "web"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration (default: built-in)")
    parser.add_argument("--data-dir", type=Path, help=f"stores and traces (default {DEFAULT_WEB_DATA_DIR})")
    parser.add_argument("--host", default="127.0.0.1", help="address the page is served on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port of the page (default 8080; 0 picks a free one)")
    parser.add_argument(
        "--attach", action="store_true", help="use services already running (acqsim up) instead of starting them"
    )


def _config(args: argparse.Namespace) -> AcqsimConfig:
    config = load_config(args.config)
    if args.data_dir:
        return dataclasses.replace(config, data_dir=args.data_dir)
    if not args.attach and args.config is None:
        return dataclasses.replace(config, data_dir=DEFAULT_WEB_DATA_DIR)
    return config


async def _main(args: argparse.Namespace, config: AcqsimConfig) -> None:
    from acqsim.pipeline import running_pipeline
    from acqsim.web.server import serve_web

    def ready(port: int) -> None:
        announce("web", args.host, port)
        print(f"web view on http://{args.host}:{port}/  (data in {config.data_dir}; Ctrl-C stops)", flush=True)

    if args.attach:
        async with anyio.create_task_group() as tg:
            ready(await tg.start(functools.partial(serve_web, config, config.nac.listen, args.host, args.port)))
        return
    async with running_pipeline(config, trace=True) as pipeline, anyio.create_task_group() as tg:
        ready(await tg.start(functools.partial(serve_web, config, pipeline.nac, args.host, args.port)))


def run(args: argparse.Namespace) -> int:
    require("starlette", "web", "acqsim web")
    require("uvicorn", "web", "acqsim web")
    config = _config(args)
    from acqsim.web.server import bind_failure

    try:
        anyio.run(_main, args, config, backend="asyncio")
    except KeyboardInterrupt:
        return EXIT_OK
    except BaseException as exc:
        failure = bind_failure(exc)
        if failure is None:
            raise
        print(f"acqsim web: {failure.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK
