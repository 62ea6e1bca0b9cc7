"""``acqsim send``: the message composer — send exactly the message you have in mind, see exactly what came back.

    acqsim send [--terminal T] [--card PAN] [--amount 12.34] [--pin PIN | --no-pin]
                [--set N=VALUE …] [--unset N …] [--raw-mac HEX] [--nac HOST:PORT] [--json] [--unmask] KIND
    acqsim send [--terminal T] --from-trace ID [--set …] [--unset …] [--raw-mac HEX]

KIND is one of the terminal's financial requests (purchase, balance, preauth, void, refund, …). The terminal
builds the request as it would (signing on first if it must), the edits are applied (VALUE as ``acqsim decode
--unmask`` shows the field: digits for BCD fields, hex for binary ones, ``t`` names the MTI), the message is
MAC'd again under the terminal's MAK — or carries ``--raw-mac`` as given, or no MAC with ``--unset 64`` — and
sent to the NAC. The request and the answer are printed dissected (card data masked unless ``--unmask``), with
whether the answer's MAC verifies. ``--from-trace T<terminal>-<STAN>`` starts from that traced request instead
(masked card data resolved against the test cards; STAN, time, date, batch, PIN block and MAC made fresh).

A composed request leaves no reversal queued. Exit codes: 0 approved with a MAC that verifies, 1 declined or
an answer whose MAC fails, 2 a bad edit or option, 3 no answer in time.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any, Final

import anyio

from acqkit.amounts import parse_amount
from acqkit.config import AcqsimConfig, CardFixture, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from terminal.composer import KINDS, PIN_BLOCK_FIELD, ComposerError, Edits, check_answer, compose, rebuild
from terminal.pos import PosTerminal
from terminal.replay.runner import resolve_card
from terminal.session import TerminalError
from wire.constants import ResponseCode
from wire.dissect import HIDDEN, as_json, as_text, dissect_pos
from wire.errors import WireError
from wire.header import PROCESSING_SIGN_ON_AGAIN
from wire.tpdu import TERMINAL_SRC
from wire.trace import read_trace

DEFAULT_AMOUNT: Final = "10.00"
ANSWER_TIMEOUT_S: Final = 10.0


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("kind", nargs="?", choices=KINDS, help="the request to build (not with --from-trace)")
    parser.add_argument("--config", type=Path, help="TOML configuration (default: built-in)")
    parser.add_argument("--data-dir", type=Path, help="override the configuration's data folder (terminal state)")
    parser.add_argument("--terminal", help="terminal id (default: the first configured)")
    parser.add_argument("--nac", help="HOST:PORT of the NAC (default: the configuration's)")
    parser.add_argument("--card", help="card PAN (default: the first test card)")
    parser.add_argument("--amount", default=DEFAULT_AMOUNT, help=f"yuan, e.g. 12.34 (default {DEFAULT_AMOUNT})")
    parser.add_argument("--pin", help="PIN entered (default: the card's test PIN)")
    parser.add_argument("--no-pin", action="store_true", help="no PIN entered (no field 52)")
    parser.add_argument("--set", action="append", default=[], metavar="N=VALUE", help="set field N (repeatable)")
    parser.add_argument("--unset", action="append", default=[], metavar="N", help="remove field N (repeatable)")
    parser.add_argument("--raw-mac", metavar="HEX", help="send this 8-byte MAC instead of the right one")
    parser.add_argument("--from-trace", metavar="ID", help="start from the traced request T<terminal>-<STAN>")
    parser.add_argument("--timeout", type=float, default=ANSWER_TIMEOUT_S, help="seconds to wait for the answer")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--unmask", action="store_true", help="show card data in clear (TEST cards only)")


def traced_request(trace_dir: Path, trace_id: str) -> tuple[str, str, dict[str, str]]:
    """(terminal, MTI, fields) of the request ``T<terminal>-<STAN>`` as the NAC traced it from the terminal."""
    terminal, _, stan = trace_id.removeprefix("T").partition("-")
    stan = stan.split("-")[0]
    path = trace_dir / "nac.jsonl"
    if not terminal or not stan:
        raise ValueError(f"--from-trace takes T<terminal>-<STAN>, not {trace_id!r}")
    if not path.exists():
        raise ValueError(f"no NAC trace at {path}")
    found = None
    for record in read_trace(path):
        message = record.get("message", {})
        fields = message.get("fields", {})
        from_terminal = record.get("direction") == "in" and message.get("tpdu", {}).get("src") == TERMINAL_SRC
        if from_terminal and fields.get("41") == terminal and fields.get("11") == stan:
            # A hidden PIN block is made fresh by ``rebuild``; other hidden fields cannot be rebuilt: left out.
            kept = {k: v for k, v in fields.items() if v != HIDDEN or k == PIN_BLOCK_FIELD}
            found = (terminal, str(message["mti"]), kept)
    if found is None:
        raise ValueError(f"no request from terminal {terminal} with STAN {stan} in {path}")
    return found


class NoAnswer(Exception):
    """The NAC was unreachable or silent before the composed request could be sent (the sign-on)."""


def _card(config: AcqsimConfig, pan: str | None) -> CardFixture:
    return config.card(pan) if pan else config.cards[0]


async def _exchange(args: argparse.Namespace, config: AcqsimConfig, terminal_id: str, edits: Edits) -> dict[str, Any]:
    nac = Endpoint.parse(args.nac) if args.nac else config.nac.listen
    async with PosTerminal(config, terminal_id, nac=nac, timeout=args.timeout) as pos:
        if not pos.session.state.signed_on:
            signed = await pos.sign_on()
            if signed is None:
                raise NoAnswer(f"no answer to the sign-on from the NAC at {nac}")
            if not signed.approved:
                raise TerminalError(f"the terminal could not sign on first (39={signed.response_code})")
        if args.from_trace:
            _, mti, fields = traced_request(config.trace_dir, args.from_trace)
            card = resolve_card(config, fields.get("2", fields.get("35", "")).split("=")[0])
            if card is None:
                raise ValueError("the traced card is not one of the configured test cards")
            request = rebuild(pos.session, mti, fields, card, edits=edits)
        else:
            card = _card(config, args.card)
            pin = None if args.no_pin else (args.pin or card.pin)
            amount = parse_amount(args.amount)
            request = compose(pos.session, args.kind, card, amount=amount, pin=pin, edits=edits)
        pos.save()
        answer = await pos.send_raw(request)
        result: dict[str, Any] = {"terminal": terminal_id, "request": dissect_pos(request, unmask=args.unmask)}
        if answer is None:
            return {**result, "answered": False}
        checked = check_answer(pos.session, answer, unmask=args.unmask)
        sign_on_again = checked.dissection["header"]["processing_request"] == PROCESSING_SIGN_ON_AGAIN
        if sign_on_again:  # the host asks for new working keys: the next send signs on first
            pos.session.state.signed_on = False
        return {**result, "answered": True, "answer": checked.dissection, "mac": checked.mac, "sign_on": sign_on_again}


def _print(result: dict[str, Any], *, as_json_object: bool) -> None:
    if as_json_object:
        out = {
            "terminal": result["terminal"],
            "answered": result["answered"],
            "request": as_json(result["request"]),
        }
        if result["answered"]:
            answer = result["answer"]
            out.update(
                answer=as_json(answer),
                response_code=answer["fields"].get("39", ""),
                answer_mac=result["mac"],
                sign_on_again=result["sign_on"],
            )
        print(json.dumps(out))
        return
    print("── request ─────────────────────────────")
    print(as_text(result["request"]))
    if not result["answered"]:
        print("── no answer in time ───────────────────")
        return
    print("── answer ──────────────────────────────")
    print(as_text(result["answer"]))
    mac = {"verifies": "verifies", "fails": "DOES NOT VERIFY", "absent": "absent (no field 64)"}[result["mac"]]
    print(f"answer MAC: {mac}")
    if result["sign_on"]:
        print("the host asks the terminal to sign on again (header processing request 3): the next send does")


def _check_source(args: argparse.Namespace) -> None:
    if args.from_trace and args.kind:
        raise ValueError("give a KIND or --from-trace, not both")
    if not args.from_trace and not args.kind:
        raise ValueError(f"give a KIND ({', '.join(KINDS)}) or --from-trace ID")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        if args.data_dir:
            config = dataclasses.replace(config, data_dir=args.data_dir)
        terminal_id = args.terminal or config.terminals[0].terminal_id
        _check_source(args)
        edits = Edits.parse(args.set, args.unset, args.raw_mac)
        result = anyio.run(_exchange, args, config, terminal_id, edits)
    except NoAnswer as exc:
        print(f"acqsim send: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (ComposerError, ConfigError, ValueError, WireError, TerminalError, OSError) as exc:
        print(f"acqsim send: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _print(result, as_json_object=args.json)
    if not result["answered"]:
        return EXIT_UNREACHABLE
    approved = result["answer"]["fields"].get("39") == ResponseCode.APPROVED
    return EXIT_OK if approved and result["mac"] == "verifies" else EXIT_DECLINED
