"""``acqsim nac``: run the network access controller, or print a running one's statistics.

acqsim nac [--config FILE] [--listen HOST:PORT] [--route 0003=HOST:PORT[,HOST:PORT] ...]
           [--status-port P] [--max-connections N] [--max-in-flight N] [--idle-timeout S]
           [--upstream-timeout S] [--max-frame-len N]
acqsim nac --stats HOST:PORT
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import anyio

from acqsim.config import ConfigError, Endpoint, load_config
from acqsim.runner import announce, run_service
from nac.server import Nac, NacLimits, serve

STATS_TIMEOUT_S = 5.0


def configure(parser: argparse.ArgumentParser) -> None:
    defaults = NacLimits()
    parser.add_argument("--config", type=Path)
    parser.add_argument("--listen", help="HOST:PORT for terminals (default: the configuration's)")
    parser.add_argument("--route", action="append", default=[], metavar="DST=HOST:PORT[,HOST:PORT]")
    parser.add_argument("--status-port", type=int, help="serve statistics as JSON on this port")
    parser.add_argument("--stats", metavar="HOST:PORT", help="print a running NAC's statistics and exit")
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections)
    parser.add_argument("--max-in-flight", type=int, default=defaults.max_in_flight_per_connection)
    parser.add_argument("--idle-timeout", type=float, default=defaults.idle_timeout_s)
    parser.add_argument("--upstream-timeout", type=float, default=defaults.upstream_timeout_s)
    parser.add_argument("--max-frame-len", type=int, default=defaults.max_frame_len)


def parse_route(text: str) -> tuple[str, list[tuple[str, int]]]:
    dst, sep, members = text.partition("=")
    if not sep or len(dst) != 4:
        raise ConfigError(f"--route {text!r}: expected DST=HOST:PORT[,HOST:PORT]")
    endpoints = [Endpoint.parse(m) for m in members.split(",") if m]
    return dst.upper(), [(e.host, e.port) for e in endpoints]


async def _print_stats(endpoint: Endpoint) -> None:
    with anyio.fail_after(STATS_TIMEOUT_S):
        stream = await anyio.connect_tcp(endpoint.host, endpoint.port)
        chunks = []
        try:
            while True:
                chunks.append(await stream.receive())
        except anyio.EndOfStream:
            pass
        await stream.aclose()
    print(b"".join(chunks).decode().strip())


def run(args: argparse.Namespace) -> int:
    try:
        if args.stats:
            anyio.run(_print_stats, Endpoint.parse(args.stats))
            return 0
        config = load_config(args.config)
        listen = Endpoint.parse(args.listen) if args.listen else config.nac.listen
        if args.route:
            routes = dict(parse_route(r) for r in args.route)
        else:
            routes = {r: [(e.host, e.port) for e in config.route_members(r)] for r in config.nac.routes}
        status_port = (
            args.status_port
            if args.status_port is not None
            else (config.nac.status.port if config.nac.status and not args.listen else None)
        )
    except (ConfigError, OSError, TimeoutError) as exc:
        print(f"acqsim nac: {exc}", file=sys.stderr)
        return 2
    limits = NacLimits(
        max_frame_len=args.max_frame_len,
        max_connections=args.max_connections,
        max_in_flight_per_connection=args.max_in_flight,
        idle_timeout_s=args.idle_timeout,
        upstream_timeout_s=args.upstream_timeout,
    )
    nac = Nac(routes, limits)

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            bound, status = await tg.start(
                functools.partial(serve, listen.host, listen.port, nac=nac, status_port=status_port)
            )
            if status is not None:
                print(f"NAC statistics on {listen.host}:{status}", flush=True)
            announce("nac", listen.host, bound)

    return run_service(main)
