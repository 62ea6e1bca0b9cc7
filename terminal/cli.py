"""``acqsim pos``: act as a POS terminal against a running pipeline (``acqsim up``).

    acqsim pos [--config FILE] [--terminal ID] [--nac HOST:PORT] COMMAND [ARGS]
      sign-on | sign-off | echo | settle | reversal-status
      balance                                   [--card PAN] [--pin PIN]
      purchase AMOUNT                           [--card PAN] [--pin PIN] [--chip | --contactless | --fallback |
                                                 --reader [HOST:PORT] (MPOS: DUKPT card reader, in-process or
                                                 the reader service)] [--signature FILE (MPOS)]
      void --stan N [--rrn R] AMOUNT            refund AMOUNT --stan N --rrn R --date MMDD
      preauth AMOUNT                            preauth-cancel AMOUNT --stan N --auth-code C
      complete AMOUNT --stan N --auth-code C    transfer AMOUNT --to PAN
      ecr-link [--listen HOST:PORT]             serve cash registers (docs/ecr.md) until stopped
      qr-pay AMOUNT --code CODE [--wait S]      charge a scanned payment code (被扫; polls if pending)
      qr-order AMOUNT [--wait S]                show an order QR and poll until it is paid (主扫)
      qr-void AMOUNT --stan N --voucher V       qr-refund AMOUNT --stan N --voucher V --date MMDD

AMOUNT is in yuan with up to 2 decimals ("12.34"); the card defaults to the first good test card and the
PIN to that card's test PIN. Approvals print the receipt (an HTML e-receipt file for MPOS terminals).
``--json`` prints one JSON object instead (the answer's code, meaning, RRN, auth code, STAN, balance).

Exit codes (acqkit/exitcodes.py): 0 approved (or done), 1 declined or an answer whose MAC failed, 2 usage or
configuration error, 3 no answer (NAC unreachable or silent: a reversal is queued where one is owed).
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import anyio

from acqkit.amounts import parse_amount
from acqkit.config import CONFIG_HELP, ConfigError, Endpoint, load_config, split_host_port
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE
from acqkit.runner import announce
from terminal.chipflow import ReadMode
from terminal.ecr_link import EcrLink, serve_ecr
from terminal.eslip import Signature, SignatureError, eslip_html, eslip_json
from terminal.pos import PosTerminal
from terminal.qr_cli import QR_COMMANDS, run_qr
from terminal.readerd.client import ReaderUnreachable
from terminal.receipt import ReceiptData, html_receipt, text_receipt
from terminal.session import Original, Outcome, TerminalError
from wire.constants import RESPONSE_MEANINGS, ResponseCode
from wire.ecrlink import DEFAULT_ECR_LINK_PORT
from wire.header import APP_MPOS
from wire.readerlink import PinEntry, ReaderLinkError

COMMANDS = (
    "sign-on",
    "sign-off",
    "echo",
    "balance",
    "purchase",
    "void",
    "refund",
    "preauth",
    "preauth-cancel",
    "complete",
    "transfer",
    "settle",
    "reversal-status",
    "ecr-link",
    *QR_COMMANDS,
)
#: Where the e-slips are published (the QR code links there): acqsim's TEST address.
ESLIP_BASE_URL = "https://receipts.acqsim.test"
#: The transactions a chip card can start (its ARQC goes with them).
CHIP_KINDS = ("purchase", "preauth")
KINDS = {
    "balance": "balance",
    "purchase": "purchase",
    "void": "void",
    "refund": "refund",
    "preauth": "preauth",
    "preauth-cancel": "preauth_cancel",
    "complete": "preauth_completion",
    "transfer": "transfer",
}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("command", choices=COMMANDS, help="what the terminal does (one message exchange each)")
    parser.add_argument("amount", nargs="?", help="amount in yuan, e.g. 12.34")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--terminal", help="terminal id (default: the first configured)")
    parser.add_argument("--nac", help="HOST:PORT of the NAC (default: the configuration's)")
    parser.add_argument("--card", help="card PAN (default: the first good test card)")
    parser.add_argument("--pin", help="PIN (default: the card's test PIN)")
    parser.add_argument("--stan", help="the original's STAN (void, refund, cancel, complete)")
    parser.add_argument("--rrn", default="", help="the original's RRN (default: none sent)")
    parser.add_argument("--date", default="", help="the original's date MMDD (refund; default: none sent)")
    parser.add_argument("--auth-code", default="", help="the pre-authorisation's code (default: none sent)")
    parser.add_argument("--to", help="transfer target PAN")
    parser.add_argument("--json", action="store_true", help="print the outcome as one JSON object")
    parser.add_argument("--code", help="qr-pay: the consumer's payment code (19 digits)")
    parser.add_argument("--voucher", help="qr-void, qr-refund: the sale's voucher number (59 A4)")
    parser.add_argument("--wait", type=float, default=60.0, help="qr-pay, qr-order: seconds to poll (default 60)")
    parser.add_argument(
        "--listen", help=f"ecr-link: HOST:PORT to serve tills on (default 127.0.0.1:{DEFAULT_ECR_LINK_PORT})"
    )
    parser.add_argument(
        "--signature", type=Path,
        help="MPOS: the cardholder's signature drawn on the phone (JSON strokes of [x, y] points); the approval "
        "writes an e-slip with it (HTML with a QR link, and the JSON the phone sends)",
    )  # fmt: skip
    read = parser.add_mutually_exclusive_group()
    read.add_argument(
        "--chip", action="store_const", dest="read", const=ReadMode.CONTACT,
        help="purchase/preauth: insert the card (contact chip, 22 = 05x, field 55 with the card's ARQC)",
    )  # fmt: skip
    read.add_argument(
        "--contactless", action="store_const", dest="read", const=ReadMode.CONTACTLESS,
        help="purchase/preauth: tap the card (22 = 07x; no PIN unless --pin is given)",
    )  # fmt: skip
    read.add_argument(
        "--reader", nargs="?", dest="read", const="reader", metavar="HOST:PORT",
        help="MPOS purchase/preauth: the card reader encrypts PIN and track under DUKPT keys; the request carries "
        "only the KSN and ciphertexts (53 = 2620000000000000, 62). Alone: the reader in-process; with HOST:PORT: "
        "the reader service there (acqsim reader serve, keys loaded by acqsim reader inject)",
    )  # fmt: skip
    read.add_argument(
        "--fallback", action="store_const", dest="read", const=ReadMode.FALLBACK,
        help="purchase/preauth: the chip fails and the stripe is read (22 = 80x, 60.5 = 2)",
    )  # fmt: skip


def exit_code(outcome: Outcome | None) -> int:
    """0 approved, 1 declined or untrusted (MAC failed), 3 no answer."""
    if outcome is None:
        return EXIT_UNREACHABLE
    return EXIT_OK if outcome.approved and outcome.trusted else EXIT_DECLINED


def outcome_json(command: str, terminal_id: str, outcome: Outcome | None, **extra: object) -> str:
    """One JSON object for ``--json``: what a script needs, never a PAN or key."""
    if outcome is None:
        return json.dumps({"command": command, "terminal": terminal_id, "answered": False, **extra})
    code = outcome.response_code
    fields = outcome.fields
    view: dict[str, object] = {
        "command": command,
        "terminal": terminal_id,
        "answered": True,
        "response_code": code,
        "meaning": RESPONSE_MEANINGS[ResponseCode(code)] if code in set(ResponseCode) else "unknown code",
        "approved": outcome.approved,
        "mac_verified": outcome.trusted,
        "sign_on_again": outcome.sign_on_again,
        "card_declined": outcome.card_declined,
        "issuer_authenticated": outcome.issuer_authenticated,
        "scripts_ran": outcome.scripts_ran,
    }
    for field, name in (("11", "stan"), ("37", "rrn"), ("38", "auth_code")):
        if fields.get(field):
            view[name] = fields[field].strip()
    if fields.get("54"):
        view["available"] = int(fields["54"][8:])
    return json.dumps({**view, **extra})


def _line(outcome: Outcome | None) -> str:
    if outcome is None:
        return "no answer (a reversal is queued and goes before the next transaction)"
    code = outcome.response_code
    meaning = RESPONSE_MEANINGS[ResponseCode(code)] if code in set(ResponseCode) else "unknown code"
    parts = [f"{code} {meaning}"]
    if not outcome.trusted:
        parts.append("ANSWER MAC FAILED (reversal queued)")
    for field, label in (("37", "RRN"), ("38", "auth"), ("11", "STAN")):
        if outcome.fields.get(field):
            parts.append(f"{label} {outcome.fields[field].strip()}")
    if outcome.fields.get("54"):
        parts.append(f"available {int(outcome.fields['54'][8:]) / 100:,.2f}")
    if outcome.sign_on_again:
        parts.append("host asks: sign on again")
    if outcome.card_declined:
        parts.append("THE CARD DECLINED after the host approved (reversed)")
    if outcome.issuer_authenticated is not None:
        parts.append("ARPC verified" if outcome.issuer_authenticated else "ARPC FAILED")
    if outcome.scripts_ran:
        parts.append("issuer scripts run (0620 advice sent)")
    return ", ".join(parts)


async def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    terminal_id = args.terminal or config.terminals[0].terminal_id
    nac = Endpoint.parse(args.nac) if args.nac else config.nac.listen
    card = config.card(args.card) if args.card else config.cards[0]
    async with PosTerminal(config, terminal_id, nac=nac) as pos:
        if args.command == "ecr-link":
            listen = (
                Endpoint.parse(args.listen) if args.listen else Endpoint(host="127.0.0.1", port=DEFAULT_ECR_LINK_PORT)
            )
            link = EcrLink(pos, card, pin=args.pin)
            async with anyio.create_task_group() as tg:
                port = await tg.start(functools.partial(serve_ecr, listen.host, listen.port, link=link))
                announce("ecr-link", listen.host, port)
            return EXIT_OK
        if args.command in QR_COMMANDS:
            return await run_qr(args, pos, config, terminal_id)
        state = pos.session.state
        if args.command == "reversal-status":
            pending = state.pending_reversal
            print(
                f"pending reversal: STAN {pending.fields['11']} ({pending.tries} tries)"
                if pending
                else "no pending reversal"
            )
            print(f"kept for settlement: {len(state.kept_reversals)}")
            return EXIT_OK
        if args.command in ("sign-on", "sign-off", "echo"):
            action = {"sign-on": pos.sign_on, "sign-off": pos.sign_off, "echo": pos.echo}[args.command]
            outcome = await action()
            print(outcome_json(args.command, terminal_id, outcome) if args.json else _line(outcome))
            return exit_code(outcome)
        if args.command == "settle":
            outcome, totals = await pos.settle()
            ours = totals.domestic
            if args.json:
                counts = {"debit_count": ours.debit_count, "debit_amount": ours.debit_amount}
                counts |= {"credit_count": ours.credit_count, "credit_amount": ours.credit_amount}
                print(outcome_json(args.command, terminal_id, outcome, **counts))
            else:
                print(
                    f"debits {ours.debit_count} / {ours.debit_amount / 100:,.2f}, "
                    f"credits {ours.credit_count} / {ours.credit_amount / 100:,.2f}: " + _line(outcome)
                )
            return exit_code(outcome)
        kind = KINDS[args.command]
        amount = 0 if kind == "balance" else parse_amount(args.amount)
        original = (
            Original(stan=f"{int(args.stan):06d}", rrn=args.rrn, auth_code=args.auth_code, local_date=args.date)
            if args.stan
            else None
        )
        pin = args.pin or card.pin
        read: ReadMode | str | None = getattr(args, "read", None)
        if read == "reader" and kind in CHIP_KINDS:
            outcome = await pos.mpos_financial(kind, card, amount=amount, pin=pin)
        elif isinstance(read, str) and not isinstance(read, ReadMode) and kind in CHIP_KINDS:  # --reader HOST:PORT
            entry: PinEntry = "keyed" if args.pin is None or args.pin == card.pin else "wrong"
            outcome = await pos.mpos_financial_via_reader(kind, split_host_port(read), card, amount=amount, pin=entry)
        elif isinstance(read, ReadMode) and kind in CHIP_KINDS:
            tapped = read is ReadMode.CONTACTLESS and not args.pin  # a small contactless payment: no PIN
            outcome = await pos.card_financial(
                kind, card, mode=read, amount=amount, pin=None if tapped else pin,
                force_chip_failure=read is ReadMode.FALLBACK,
            )  # fmt: skip
        elif read is not None:
            raise ValueError("--chip, --contactless, --fallback and --reader apply to purchase and preauth")
        else:
            outcome = await pos.financial(kind, card, amount=amount, pin=pin, original=original, target_pan=args.to)
        if args.json:
            print(outcome_json(args.command, terminal_id, outcome))
        else:
            print(_line(outcome))
        if not args.json and outcome is not None and outcome.approved and kind != "balance":
            fixture = config.terminal(terminal_id)
            merchant = config.merchant(fixture.merchant_id)
            data = ReceiptData(
                merchant_name=merchant.name,
                merchant_id=merchant.merchant_id,
                terminal_id=terminal_id,
                operator="001",
                pan=card.pan,
                kind=kind,
                batch=state.batch,
                stan=outcome.fields.get("11", ""),
                rrn=outcome.fields.get("37", ""),
                auth_code=outcome.fields.get("38", ""),
                date=outcome.fields.get("13", ""),
                time=outcome.fields.get("12", ""),
                amount=amount,
            )
            if fixture.app_type == APP_MPOS:
                path = config.data_dir / "receipts" / f"{terminal_id}-{data.stan}.html"
                path.parent.mkdir(parents=True, exist_ok=True)
                if args.signature is not None:
                    signature = Signature.from_json(json.loads(args.signature.read_text(encoding="utf-8")))
                    url = f"{ESLIP_BASE_URL}/{terminal_id}/{data.stan}"
                    path.write_text(eslip_html(data, signature, url), encoding="utf-8")
                    path.with_suffix(".json").write_text(eslip_json(data, signature, url), encoding="utf-8")
                else:
                    path.write_text(html_receipt(data), encoding="utf-8")
                print(f"e-receipt written to {path}")
            else:
                print(text_receipt(data))
        return exit_code(outcome)


def run(args: argparse.Namespace) -> int:
    try:
        return anyio.run(_run, args)
    except ReaderUnreachable as exc:  # before OSError-like errors: nothing answered at --reader
        print(f"acqsim pos: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except (ConfigError, ValueError, SignatureError, OSError) as exc:
        print(f"acqsim pos: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (TerminalError, ReaderLinkError) as exc:  # the terminal, or the reader service, refused
        print(f"acqsim pos: {exc}", file=sys.stderr)
        return EXIT_DECLINED
