"""``acqsim`` command line: one entry point, one subcommand per job.

Each subcommand lives in its own module exposing ``configure(parser)`` and ``run(args) -> int``; only the
chosen one is imported, so ``acqsim decode`` does not pay for starting the services' dependencies.
Logging is configured here and only here (services use named loggers ``acqsim.<service>``).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
from collections.abc import Iterator, Sequence
from typing import Final, NoReturn, Protocol

from acqkit.config import ConfigError
from acqkit.exitcodes import EXIT_DECLINED, EXIT_FAIL_STOP, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.extras import MissingExtra
from acqkit.txnlog import LOG_FORMATS, configure_logging
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
    "merchant": (
        "merchant.cli",
        "run the merchant platform (coupons, vouchers, bookings, notices, members); sales report",
    ),
    "ecr": ("ecr.cli", "a cash register: ring up items, charge them on the terminal's ECR link, or take cash"),
    "wallet": ("wallet.cli", "run the QR wallet host, or act as the consumer's wallet app (code, pay, confirm)"),
    "cards": ("acqsim.cmd_cards", "list or issue virtual test cards"),
    "load": ("acqsim.cmd_load", "many-terminal load generator"),
    "reader": ("terminal.readerd.cli", "the MPOS card reader as its own service, and its TEST key loading"),
    "echo-host": ("terminal.echohost.cli", "a canned-answer POS host to measure the load generator against"),
    "replay": ("terminal.replay_cli", "replay recorded traffic and diff the answers"),
    "send": ("terminal.send_cli", "compose one message as a terminal would, edit it, send it, check the answer"),
    "fuzz": ("acqsim.cmd_fuzz", "fuzz a POS-link host while a good terminal transacts beside it"),
    "chaos": ("acqsim.cmd_chaos", "acqsim up under load, kill -9 each service in turn, then reconcile"),
    "scheme": ("acqsim.cmd_scheme", "the four-party TEST world: an off-us day through the scheme switch"),
    "issuer": ("acqsim.cmd_issuer", "run an issuer host: another bank behind the scheme switch"),
    "clearing": ("acqsim.cmd_clearing", "the scheme's end of day: clearing files per member, load and reconcile"),
    "scenario": ("acqsim.cmd_scenario", "what-if scenarios: aggregator-failure (一清 vs 二清)"),
    "arch": ("acqsim.cmd_arch", "the package map read from the source: layers and what each package uses"),
    "web": ("acqsim.cmd_web", "the web view: live sequence diagram, dissected messages, try-it panel, ledger"),
    "wireshark": ("acqsim.cmd_wireshark", "install or regenerate acqsim's Wireshark Lua dissector"),
}
#: (subcommand, action) pairs served by a top-layer module rather than the service's own CLI, because they
#: read more than one service's store (a service must not import another).
ACTIONS: Final[dict[tuple[str, str], tuple[str, str]]] = {
    ("ledger", "reconcile"): ("acqsim.reconcile", "front-end journal vs ledger, matched by RRN; exit 1 on differences"),
    ("wallet", "settle"): ("acqsim.wallet_settle", "post the QR wallet's takings of a date into the ledger, once"),
}

#: Commands without ``--json``, and why: every other command reports, and prints its report as JSON on
#: request (tests/acqsim/test_cli_conventions.py holds the two lists against the parsers).
WITHOUT_JSON: Final[dict[str, str]] = {
    "demo": "a narrated walk-through for people; its figures come from ledger, trace and reconcile, which have --json",
    "up": "runs the services until stopped; it prints one READY line per service, which scripts read",
    "echo-host": "runs a canned-answer host until stopped; the load generator's --json reports what it measured",
    "web": "serves the web view until stopped; the page and its event stream are the report",
    "wireshark": "installs or regenerates a file and prints its path; nothing to report as data",
    "nac": "runs a service; its statistics are already one JSON document on the status port (--status-port)",
    "scheme": "day is a narrated walk-through (its figures: clearing show/load/reconcile --json); serve runs a service",
    "issuer": "runs a service; it prints one READY line, which scripts read",
}
#: Every command's ``--help`` ends with this; docs/cli.md has a table per command.
EXIT_CODES_EPILOG: Final = (
    f"exit codes: {EXIT_OK} ok / approved, {EXIT_DECLINED} declined or a check failed, {EXIT_USAGE} usage or "
    f"configuration error, {EXIT_UNREACHABLE} a peer unreachable or silent, {EXIT_FAIL_STOP} a service stopped "
    "itself on a store failure (restart it); see docs/cli.md"
)


class HelpFormatter(argparse.HelpFormatter):
    """Every option that takes a value shows its default, unless its help already does (``%(default)s``) or
    it has none (``None``, ``""``, ``[]``: the help says what happens without it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        help_text = action.help or ""
        if (
            "%(default)" in help_text
            or action.default in (None, argparse.SUPPRESS, "", [])
            or action.nargs == 0  # a flag: off unless given
            or not (action.option_strings or action.nargs in ("?", "*"))
        ):
            return help_text
        return f"{help_text} (default: %(default)s)"


#: Errors about a file the user named (missing, a folder, not readable): one line and exit 2, wherever met.
USER_FILE_ERRORS: Final = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


class Parser(argparse.ArgumentParser):
    """A usage error is one line on stderr (what is wrong, and where to read more) and exit code 2; the
    sub-parsers of every command inherit this class."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: {message} (see {self.prog} --help)\n")


#: A command's path (``("ledger", "check")``) and its parser.
CommandParser = tuple[tuple[str, ...], argparse.ArgumentParser]


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


def command_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[CommandParser]:
    """``parser`` and every parser below it (subcommands, their sub-actions), each with its command path."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub_parser in action.choices.items():
                yield from command_parsers(sub_parser, (*path, name))


def _finish(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The conventions every command follows, applied once here: defaults shown, exit codes in the epilog."""
    for path, each in command_parsers(parser):
        if path and "--log-format" not in each._option_string_actions:  # after the command too: `up -v`
            each.add_argument("-v", "--verbose", action="count", default=argparse.SUPPRESS, help="more log output")
            each.add_argument("--log-format", choices=LOG_FORMATS, default=argparse.SUPPRESS, help="text or json")
        each.formatter_class = HelpFormatter
        each.epilog = f"{each.epilog}  {EXIT_CODES_EPILOG}" if each.epilog else EXIT_CODES_EPILOG
    return parser


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    parser = Parser(prog="acqsim", description="ISO 8583 card-payment acquiring simulator")
    parser.add_argument("--version", action="version", version=f"acqsim {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    _add_log_format(parser)
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
    return _finish(parser)


def _add_log_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-format",
        choices=LOG_FORMATS,
        default="text",
        help="log lines as text, or as JSON objects with one per transaction per service (docs/logging.md)",
    )


def _action_parser(argv: Sequence[str]) -> tuple[argparse.ArgumentParser, list[str]] | None:
    """The parser for an ``ACTIONS`` pair named by ``argv``, and the arguments left for it."""
    positional = [i for i, token in enumerate(argv) if not token.startswith("-")]
    if len(positional) < 2 or (argv[positional[0]], argv[positional[1]]) not in ACTIONS:
        return None
    first, second = positional[0], positional[1]
    module, help_text = ACTIONS[(argv[first], argv[second])]
    parser = Parser(prog=f"acqsim {argv[first]} {argv[second]}", description=help_text)
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv: debug)")
    _add_log_format(parser)
    command: _Command = importlib.import_module(module)
    command.configure(parser)
    parser.set_defaults(_run=command.run, command=f"{argv[first]} {argv[second]}")
    return _finish(parser), [*argv[:first], *argv[first + 1 : second], *argv[second + 1 :]]


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
    configure_logging(args.verbose, args.log_format)
    try:
        code: int = args._run(args)
    except KeyboardInterrupt:
        return 130
    except (MissingExtra, ConfigError) as exc:  # a missing extra or a bad setting: one line, no traceback
        print(f"acqsim {args.command}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except USER_FILE_ERRORS as exc:  # a file named on the command line or in the configuration
        print(f"acqsim {args.command}: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    return code
