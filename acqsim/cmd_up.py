"""``acqsim up``: start HSM, ledger, front-end and NAC as separate processes and keep them running.

Ctrl-C (or SIGTERM) stops them all: terminate, wait up to 5 s, then kill. Logs go to ``<data_dir>/logs``.
``--web`` also serves the web view (``acqsim web``) on ``--web-port``, following the services' traces; the
supervisor then runs on asyncio (uvicorn's loop), the services keep the backend ``ACQSIM_BACKEND`` names.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import signal
import sys
from pathlib import Path

import anyio

from acqkit.config import CONFIG_HELP, LOOPBACK, MAX_FRONTENDS, AcqsimConfig, ConfigError, load_config
from acqkit.extras import require
from acqkit.freeport import free_port
from acqkit.metrics import DEFAULT_METRICS_PORTS
from acqkit.rules import RuleError, parse_rules
from acqkit.runner import backend_options, leaves
from acqsim.provision import CeremonyError
from acqsim.supervisor import ServiceSpec, StartupFailed, supervise, with_ephemeral_ports
from hsm_sim.client import HsmUnavailable


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--ephemeral-ports", action="store_true", help="listen on free loopback ports instead")
    parser.add_argument(
        "--data-dir", type=Path, help="where stores, traces and logs go (default: the configuration's data folder)"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        help="scripted answers and faults (TOML) for the NAC and the front-end; reloaded when it changes",
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="each service serves Prometheus metrics on /metrics (ports 9150 hsm, 9151 ledger, 9152 front-end,"
        " 9153 NAC; free ports with --ephemeral-ports)",
    )
    parser.add_argument(
        "--frontends",
        type=int,
        metavar="N",
        help=f"run a pool of N front-end processes (1–{MAX_FRONTENDS}), each its own port, journal and RRNs;"
        " the NAC keeps each terminal on one (default: the configuration's [frontend] instances, 1)",
    )
    parser.add_argument(
        "--ledger-db",
        metavar="PATH|URL",
        help="the ledger's store: a SQLite path or postgresql://… shared by every front-end (default: the"
        " configuration's [ledger] db)",
    )
    parser.add_argument("--web", action="store_true", help="also serve the web view (needs the web extra)")
    parser.add_argument("--web-port", type=int, default=8080, help="port of the web view (default 8080; 0: any)")


async def _up(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    if args.data_dir:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    config = with_pool(config, args.frontends, args.ledger_db)
    if args.ephemeral_ports:
        config = with_ephemeral_ports(config)
    config.check_listen_ports()
    config.data_dir.mkdir(parents=True, exist_ok=True)

    def ready(spec: ServiceSpec) -> None:
        print(f"{spec.title:<9} listening on {spec.endpoint}", flush=True)

    async with anyio.create_task_group() as tg:
        extra = _extra_args(args, config.frontend.instances)
        supervising = functools.partial(
            supervise, config, args.config, ready, extra_args=extra, log_args=log_args(args)
        )
        await tg.start(supervising)
        for name, argv in sorted(extra.items()):
            if "--metrics-port" in argv:
                port = argv[argv.index("--metrics-port") + 1]
                print(f"metrics   {name:<9} http://{LOOPBACK}:{port}/metrics", flush=True)
        if args.web:
            from acqsim.web.server import serve_web

            web_port = await tg.start(functools.partial(serve_web, config, config.nac.listen, LOOPBACK, args.web_port))
            print(f"web       on http://{LOOPBACK}:{web_port}/", flush=True)
        print(f"all services up; data in {config.data_dir}; Ctrl-C stops them", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                print("stopping…", flush=True)
                tg.cancel_scope.cancel()
                break


#: The services that read ``--rules`` (acqkit/rules.py: SERVICES).
RULES_AT = ("nac", "frontend", "hsm", "ledger")
#: The services that serve ``--metrics-port``.
METRICS_AT = ("hsm", "ledger", "frontend", "nac")


def log_args(args: argparse.Namespace) -> tuple[str, ...]:
    """``acqsim up``'s -v and --log-format, as each service's command line gets them (before its command);
    nothing when they are the defaults, so that a service's command line starts with its name as before."""
    verbosity: int = args.verbose
    log_format = () if args.log_format == "text" else (f"--log-format={args.log_format}",)
    return ("-v",) * verbosity + log_format


def _extra_args(args: argparse.Namespace, frontends: int = 1) -> dict[str, tuple[str, ...]]:
    """More command-line arguments per service: the rules file, the metrics port (each front-end of a pool of
    ``frontends`` on a free port of its own, keyed ``frontend-K``)."""
    extra: dict[str, tuple[str, ...]] = {}
    if args.rules:
        for name in RULES_AT:
            extra[name] = (*extra.get(name, ()), "--rules", str(args.rules.resolve()))
    if args.metrics:
        for name in METRICS_AT:
            if name == "frontend" and frontends > 1:  # a pool: every member on a free port of its own
                for title in (f"frontend-{k}" for k in range(1, frontends + 1)):
                    extra[title] = (*extra.get(name, ()), "--metrics-port", str(free_port(LOOPBACK)))
                continue
            port = free_port(LOOPBACK) if args.ephemeral_ports else DEFAULT_METRICS_PORTS[name]
            extra[name] = (*extra.get(name, ()), "--metrics-port", str(port))
    return extra


def with_pool(config: AcqsimConfig, frontends: int | None, ledger_db: str | None) -> AcqsimConfig:
    """``--frontends`` and ``--ledger-db`` over the configuration; raises :class:`ConfigError`."""
    if frontends is not None:
        if not 1 <= frontends <= MAX_FRONTENDS:
            raise ConfigError(f"--frontends must be from 1 to {MAX_FRONTENDS}, not {frontends}")
        config = dataclasses.replace(config, frontend=dataclasses.replace(config.frontend, instances=frontends))
    if ledger_db is not None:
        config = dataclasses.replace(config, ledger=dataclasses.replace(config.ledger, db=ledger_db))
    return config


def run(args: argparse.Namespace) -> int:
    if args.rules is not None:
        try:
            parse_rules(args.rules.read_text(encoding="utf-8"), source=str(args.rules))
        except (OSError, RuleError) as exc:
            print(f"acqsim up: --rules: {exc}", file=sys.stderr)
            return 2
    backend, options = backend_options()
    if args.web:
        require("starlette", "web", "acqsim up --web")
        require("uvicorn", "web", "acqsim up --web")
        backend, options = "asyncio", {}
    try:
        anyio.run(_up, args, backend=backend, backend_options=options)
    except ConfigError as exc:
        print(f"acqsim up: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        pass
    except BaseExceptionGroup as group:  # raised out of the supervisor's task groups
        failed, _ = group.split((StartupFailed, CeremonyError, HsmUnavailable))
        if failed is None:
            web_failure = _web_bind_failure(group) if args.web else None
            if web_failure is None:
                raise
            print(f"acqsim up: {web_failure}", file=sys.stderr)
            return 1
        for failure in leaves(failed, BaseException):
            print(f"acqsim up: {failure}", file=sys.stderr)
        return 1
    return 0


def _web_bind_failure(group: BaseExceptionGroup[BaseException]) -> OSError | None:
    from acqsim.web.server import bind_failure

    return bind_failure(group)
