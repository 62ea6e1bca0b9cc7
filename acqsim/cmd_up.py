"""``acqsim up``: start HSM, ledger, front-end and NAC as separate processes and keep them running.

Ctrl-C (or SIGTERM) stops them all: terminate, wait up to 5 s, then kill. Logs go to ``<data_dir>/logs``.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from pathlib import Path

import anyio

from acqkit.config import ConfigError, load_config
from acqkit.runner import backend_options
from acqsim.provision import CeremonyError
from acqsim.supervisor import ServiceSpec, StartupFailed, supervise, with_ephemeral_ports
from hsm_sim.client import HsmUnavailable


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="TOML configuration (default: built-in, data in .acqsim/)")
    parser.add_argument("--ephemeral-ports", action="store_true", help="listen on free loopback ports instead")
    parser.add_argument("--data-dir", type=Path, help="override the configuration's data folder")


async def _up(args: argparse.Namespace) -> None:
    config = load_config(args.config)
    if args.data_dir:
        config = dataclasses.replace(config, data_dir=args.data_dir)
    if args.ephemeral_ports:
        config = with_ephemeral_ports(config)
    config.data_dir.mkdir(parents=True, exist_ok=True)

    def ready(spec: ServiceSpec) -> None:
        print(f"{spec.name:<9} listening on {spec.endpoint}", flush=True)

    async with anyio.create_task_group() as tg:
        await tg.start(supervise, config, args.config, ready)
        print(f"all services up; data in {config.data_dir}; Ctrl-C stops them", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for _ in signals:
                print("stopping…", flush=True)
                tg.cancel_scope.cancel()
                break


def run(args: argparse.Namespace) -> int:
    backend, options = backend_options()
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
            raise
        for failure in _leaves(failed):
            print(f"acqsim up: {failure}", file=sys.stderr)
        return 1
    return 0


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for exc in group.exceptions:
        found += _leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc]
    return found
