"""``acqsim`` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``; only the
chosen one is imported, so ``acqsim decode`` does not pay for starting the services' dependencies.
Logging is configured here and only here (services use named loggers ``acqsim.<service>``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Final, Protocol

from acqkit.config import ConfigError
from acqkit.exitcodes import EXIT_USAGE
from acqkit.extras import MissingExtra
from acqsim import __version__

#: subcommand → (module, one-line help). Order is the order ``acqsim --help`` lists them in.
SUBCOMMANDS: Final[dict[str, tuple[str, str]]] = {
    "demo": ("acqsim.cmd_demo", "start the pipeline and walk through a business day"),
    "up": ("acqsim.cmd_up", "start HSM, ledger, front-end and NAC as processes and keep them running"),
    "config": ("acqsim.cmd_config", "show the effective configuration, test terminals and cards"),
    "decode": ("acqsim.cmd_decode", "dissect a POS-link or host-link frame given as hex"),
    "trace": ("acqsim.cmd_trace", "show a transaction's journey across the hops"),
    "certs": ("acqsim.cmd_certs", "create or show the local CA and service certificates for TLS"),
    "keys": ("acqsim.cmd_keys", "import, generate (through the HSM) or list the key store's keys"),
    "hsm": ("hsm_sim.cli", "run the payShield-style HSM simulator"),
    "ledger": ("core_ledger.cli", "run the core ledger, or query its store"),
    "nac": ("nac.cli", "run the network access controller (TPDU router)"),
    "frontend": ("frontend.cli", "run the acquirer front-end processor (POSP)"),
    "pos": ("terminal.cli", "act as a POS terminal: sign-on, purchase, settle ..."),
    "cards": ("acqsim.cmd_cards", "list or issue virtual test cards"),
    "load": ("acqsim.cmd_load", "many-terminal load generator"),
    "replay": ("terminal.replay_cli", "replay recorded traffic and diff the answers"),
    "fuzz": ("acqsim.cmd_fuzz", "fuzz a POS-link host while a good terminal transacts beside it"),
    "chaos": ("acqsim.cmd_chaos", "acqsim up under load, kill -9 each service in turn, then reconcile"),
    "scheme": ("acqsim.cmd_scheme", "the four-party TEST world: an off-us day through the scheme switch"),
    "issuer": ("acqsim.cmd_issuer", "run an issuer host: another bank behind the scheme switch"),
    "clearing": ("acqsim.cmd_clearing", "the scheme's end of day: clearing files per member, load and reconcile"),
    "scenario": ("acqsim.cmd_scenario", "what-if scenarios: aggregator-failure (一清 vs 二清)"),
}
#: (subcommand, action) pairs served by a top-layer module rather than the service's own CLI, because they
#: read more than one service's store (a service must not import another).
ACTIONS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("ledger", "reconcile"): ("acqsim.reconcile", "front-end journal vs ledger, matched by RRN; exit 1 on differences"),
}

LOG_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _Command(Protocol):
    def configure(self, parser: argparse.ArgumentParser) -> None: ...
    def run(self, args: argparse.Namespace) -> int: ...


def _available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _chosen(argv: Sequence[str]) -> str | None:
    for token in argv:
        if not token.startswith("-"):
            return token if token in SUBCOMMANDS else None
    return None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="acqsim", description="ISO 8583 card-payment acquiring simulator")
    parser.add_argument("--version", action="version", version=f"acqsim {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(argv)
    for name, (module, help_text) in SUBCOMMANDS.items():
        if not _available(module):
            continue
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            command: _Command = importlib.import_module(module)
            command.configure(sub_parser)
            sub_parser.set_defaults(_run=command.run)
    return parser


def configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format=LOG_FORMAT, stream=sys.stderr)


def _action_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, list[str]] | None:
    """The parser for an ``ACTIONS`` pair named by ``argv``, and the arguments left for it."""
    positional = [i for i, token in enumerate(argv) if not token.startswith("-")]
    if len(positional) < 2 or (argv[positional[0]], argv[positional[1]]) not in ACTIONS:
        return None
    first, second = positional[0], positional[1]
    module, help_text = ACTIONS[(argv[first], argv[second])]
    parser = argparse.ArgumentParser(prog=f"acqsim {argv[first]} {argv[second]}", description=help_text)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    command: _Command = importlib.import_module(module)
    command.configure(parser)
    parser.set_defaults(_run=command.run, command=f"{argv[first]} {argv[second]}")
    return parser, [*argv[:first], *argv[first + 1 : second], *argv[second + 1 :]]


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    action = _action_parser(args_list)
    if action is not None:
        parser, args_list = action
    else:
        parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    configure_logging(args.verbose)
    try:
        code: int = args._run(args)
    except KeyboardInterrupt:
        return 130
    except (MissingExtra, ConfigError) as exc:  # a missing extra or a bad setting: one line, no traceback
        print(f"acqsim {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return code
