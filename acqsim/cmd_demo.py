"""``acqsim demo`` (what ``make demo`` runs): a business day through all five hops, explained."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import functools
import sys
import tempfile
from pathlib import Path
from typing import Any

import anyio

from acqkit.config import LOOPBACK, AcqsimConfig, Endpoint, config_to_toml
from acqkit.exitcodes import EXIT_USAGE
from acqkit.extras import require
from acqkit.runner import backend_options
from acqkit.tls import client_context, create_all
from acqsim.demo import run_demo
from acqsim.fourparty import with_scheme
from acqsim.processes import StartupError, running_services


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--processes",
        action="store_true",
        help="run the services as separate processes (acqsim up) instead of in this process",
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="with --processes: mutual TLS on every service hop (certificates created in DATA_DIR/tls if missing)",
    )
    parser.add_argument(
        "--data-dir", type=Path, help="where stores and traces go (default: a fresh .acqsim/demo-<time> folder)"
    )
    parser.add_argument(
        "--scheme",
        action="store_true",
        help="then the four-party day: other banks' cards through the scheme switch, clearing, 一清 vs 二清",
    )
    parser.add_argument(
        "--web", action="store_true", help="after the day, keep the services up and serve the web view (Ctrl-C stops)"
    )
    parser.add_argument("--web-port", type=int, default=8080, help="port of the web view (default 8080; 0: any)")


def run(args: argparse.Namespace) -> int:
    data_dir = args.data_dir or Path(".acqsim") / f"demo-{dt.datetime.now():%Y%m%d-%H%M%S}"
    config = AcqsimConfig.default(data_dir=data_dir)
    backend, options = backend_options()
    if args.tls and not args.processes:
        print("acqsim demo: --tls needs --processes", file=sys.stderr)
        return EXIT_USAGE
    if args.web:
        require("starlette", "web", "acqsim demo --web")
        require("uvicorn", "web", "acqsim demo --web")
    if not args.processes:
        ok: bool = anyio.run(run_demo, config, print, backend=backend, backend_options=options)
        if args.scheme:
            ok = _scheme_day(data_dir / "scheme", backend, options) and ok
        if args.web:
            _serve_web_until_stopped(config, None, args.web_port)
        return 0 if ok else 1
    config = with_scheme(dataclasses.replace(config, tls=args.tls))  # the switch and issuer B as processes too
    try:
        with (
            tempfile.TemporaryDirectory(prefix="acqsim-demo-") as folder,
            running_services(config_file=_config_file(config, Path(folder))) as services,
        ):
            # The demo's smart POS, till and wallet app dial the wallet host and the merchant platform with the
            # terminal's certificate when every hop is mutual TLS.
            client_tls = client_context(config.tls_dir, "terminal") if args.tls else None
            ok = anyio.run(
                functools.partial(run_demo, config, print, services=services, client_tls=client_tls),
                backend=backend,
                backend_options=options,
            )
            if args.web:
                _serve_web_until_stopped(config, services.nac, args.web_port)
    except StartupError as exc:
        print(f"acqsim demo: {exc}", file=sys.stderr)
        return 1
    return 0 if ok else 1


def _serve_web_until_stopped(config: AcqsimConfig, nac: Endpoint | None, port: int) -> None:
    """The web view over the demo's services (``nac``), or over the demo's stores in this process; Ctrl-C stops."""
    from acqsim.pipeline import running_pipeline
    from acqsim.web.server import serve_web

    async def serve() -> None:
        async with contextlib.AsyncExitStack() as stack:
            target = nac
            if target is None:
                target = (await stack.enter_async_context(running_pipeline(config, trace=True))).nac
            async with anyio.create_task_group() as tg:
                bound = await tg.start(functools.partial(serve_web, config, target, LOOPBACK, port))
                print(f"\nweb view on http://{LOOPBACK}:{bound}/  — watch and try it; Ctrl-C stops", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(serve, backend="asyncio")


def _config_file(config: AcqsimConfig, folder: Path) -> Path:
    """The demo's configuration for ``acqsim up``, written to ``folder``: the built-in TEST configuration with
    the four-party world's ``[scheme]`` (acqsim/fourparty.py) and, under ``tls = true``, certificates created
    first unless they are there. ``folder`` is a temporary one outside the data folder: the file holds the TEST
    keys and cards of the built-in configuration, which the demo day's secrets scan holds the data folder free of
    (the services write only cryptograms and masked cards there)."""
    if config.tls and not (config.tls_dir / "ca.pem").exists():
        create_all(config.tls_dir)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    path = folder / "acqsim-demo.toml"
    path.write_text(config_to_toml(config), encoding="utf-8")
    return path


def _scheme_day(folder: Path, backend: str, options: dict[str, Any]) -> bool:
    """The four-party day after the acquirer's own (``--scheme``; acqsim/demo_scheme.py)."""
    from acqsim.demo_scheme import EXPECTED_CODES, scheme_day

    print("")
    print(f"the four-party day — data in {folder}")
    day = anyio.run(scheme_day, folder, print, backend=backend, backend_options=options)
    as_expected = dict(day.codes) == dict(EXPECTED_CODES)
    return as_expected and day.balanced and day.books_sound
