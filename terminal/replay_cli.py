"""``acqsim replay``: re-send recorded terminal requests and diff each answer against the recorded one.

    acqsim replay TRACE.jsonl --against HOST:PORT          acqsim trace (rebuilt with fresh keys)
    acqsim replay --hex FILE --against HOST:PORT [--raw]   one frame per line
    acqsim replay --pcap FILE --against HOST:PORT [--raw]  a tcpdump capture of the POS link
    options: --ignore 39,54 (more fields to ignore)  --no-default-ignore  --config FILE

Fields 11, 12, 13, 15, 37, 38 and 64 are ignored by default (they change on every run). Exit status 1 on any
unexpected difference or missing answer.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

import anyio

from acqkit.config import CONFIG_HELP, ConfigError, Endpoint, load_config
from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_UNREACHABLE
from acqkit.peerclient import accepts_connection
from terminal.replay.diff import parse_ignore
from terminal.replay.runner import ReplayResult, replay
from terminal.replay.sources import from_hex, from_pcap, from_trace
from wire.errors import WireError


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("trace", nargs="?", type=Path, help="an acqsim trace file (nac.jsonl)")
    parser.add_argument("--hex", type=Path, help="replay the requests of a file of hex frames, one a line")
    parser.add_argument("--pcap", type=Path, help="replay the POS-link requests of a pcap capture")
    parser.add_argument("--against", required=True, help="HOST:PORT of the NAC (or front-end) to replay against")
    parser.add_argument("--raw", action="store_true", help="send the recorded bytes unchanged")
    parser.add_argument("--ignore", help="more fields to ignore, comma-separated")
    parser.add_argument(
        "--no-default-ignore",
        action="store_true",
        help="compare every field, also those that differ on each run (dates, RRN, approval code, MAC)",
    )
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="print one JSON object per exchange, then a summary")


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        against = Endpoint.parse(args.against)
        if args.hex:
            exchanges = from_hex(args.hex)
        elif args.pcap:
            exchanges = from_pcap(args.pcap)
        elif args.trace:
            exchanges = from_trace(args.trace)
        else:
            print("acqsim replay: give a trace, --hex or --pcap", file=sys.stderr)
            return 2
    except (ConfigError, WireError, OSError) as exc:
        print(f"acqsim replay: {exc}", file=sys.stderr)
        return 2
    ignored = parse_ignore(args.ignore, keep_defaults=not args.no_default_ignore)
    if not anyio.run(functools.partial(accepts_connection, against.host, against.port)):
        print(f"acqsim replay: nothing accepts a connection at {against}", file=sys.stderr)
        return EXIT_UNREACHABLE
    results = anyio.run(lambda: replay(config, exchanges, against, raw=args.raw, ignored=ignored))
    bad = 0
    for number, result in enumerate(results, start=1):
        fields = result.recorded.request_fields
        bad += not result.ok
        if args.json:
            print(json.dumps(_as_json(number, result)))
            continue
        head = f"#{number} {result.recorded.mti} terminal {fields.get('41', '?')} STAN {fields.get('11', '?')}"
        if result.skipped:
            print(f"{head}: skipped ({result.skipped})")
        elif not result.answered:
            print(f"{head}: NO ANSWER")
        elif result.recorded.answer_fields is None:
            print(f"{head}: answered (nothing recorded to compare)")
        elif not result.differences:
            print(f"{head}: same")
        else:
            print(f"{head}: {len(result.differences)} difference(s)")
            for diff in result.differences:
                print(f"    field {diff.field}: recorded {diff.recorded!r}  replayed {diff.replayed!r}")
    if args.json:
        print(json.dumps({"exchanges": len(results), "bad": bad}))
    else:
        print(f"{len(results)} exchange(s), {bad} with unexpected differences or no answer")
    return EXIT_DECLINED if bad else EXIT_OK


def _as_json(number: int, result: ReplayResult) -> dict[str, object]:
    fields = result.recorded.request_fields
    if result.skipped:
        outcome = "skipped"
    elif not result.answered:
        outcome = "no answer"
    elif result.recorded.answer_fields is None:
        outcome = "answered"
    else:
        outcome = "different" if result.differences else "same"
    return {
        "exchange": number,
        "mti": result.recorded.mti,
        "terminal": fields.get("41"),
        "stan": fields.get("11"),
        "outcome": outcome,
        "ok": result.ok,
        "differences": [{"field": d.field, "recorded": d.recorded, "replayed": d.replayed} for d in result.differences],
    }
