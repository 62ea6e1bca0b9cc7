"""``acqsim trace show ID|--last``: one transaction's journey across the hops, from the services' traces;
``acqsim trace export --pcap FILE``: the POS link as a capture Wireshark opens (card data masked);
``acqsim trace stages``: where the transactions' time goes, stage by stage (p50, p99, max; ``acqsim/tracestages.py``).

Both read either trace format (compact records are dissected as they are read, ``wire/trace.py``); a file that
is not an acqsim trace, or a newer format, is refused with its name and line (exit 2).

ID is ``T<terminal>-<STAN>`` (as in the trace files) or ``<terminal>-<STAN>``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from acqkit.config import CONFIG_HELP, load_config
from acqkit.exitcodes import EXIT_OK, EXIT_USAGE
from acqsim.tracestages import render as render_stages
from acqsim.tracestages import stage_report
from acqsim.traceview import journey, last_transaction, load_records
from terminal.replay.pcap import CapturedFrame, write_pcap
from wire.codec import encode_pos_body
from wire.dissect import HIDDEN
from wire.errors import MessageEncodeError
from wire.header import PosHeader
from wire.posframe import PosFrame
from wire.specs import POS_CARD_FIELDS, POS_SECRET_FIELDS
from wire.tpdu import TERMINAL_SRC, Tpdu
from wire.trace import TraceFormatError, read_trace


def _safe_frame(message: dict[str, Any]) -> bytes:
    """Re-encode a traced (masked) POS message: masked digits become 0, the PIN block becomes zero bytes, and a
    field the trace holds only as hidden or as masked text (62's keys, 55's data objects, 48's upload
    details) is left out of the frame — a capture shows what the trace knows, never a guess."""
    fields = {"t": message["mti"]}
    for number, value in message["fields"].items():
        if number in POS_SECRET_FIELDS:
            fields[number] = "00" * 8
        elif value == HIDDEN:
            continue
        elif number in POS_CARD_FIELDS or "*" in value:
            fields[number] = value.replace("*", "0")
        else:
            fields[number] = value
    tpdu = Tpdu(id=int(message["tpdu"]["id"], 16), dst=message["tpdu"]["dst"], src=message["tpdu"]["src"])
    header = PosHeader(**message["header"])
    for _ in range(len(fields)):
        try:
            body = encode_pos_body(fields)
            break
        except MessageEncodeError as exc:
            if exc.field is None or exc.field not in fields or exc.field == "t":
                raise
            del fields[exc.field]  # masked text that is no longer the field's format
    return PosFrame(tpdu=tpdu, header=header, body=body).to_bytes()


def export_pcap(nac_trace: Path, out: Path) -> int:
    frames = []
    for record in read_trace(nac_trace):
        message = record.get("message", {})
        tpdu = message.get("tpdu", {})
        inbound = record["direction"] == "in" and tpdu.get("src") == TERMINAL_SRC
        outbound = record["direction"] == "out" and tpdu.get("dst") == TERMINAL_SRC
        if inbound or outbound:
            when = dt.datetime.fromisoformat(record["time"]).timestamp()
            frames.append(CapturedFrame(when, inbound, _safe_frame(message)))
    return write_pcap(frames, out)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("show", "export", "stages"),
        help="show one transaction's journey, export the NAC's trace, or time every transaction's stages",
    )
    parser.add_argument("id", nargs="?", help="T<terminal>-<STAN>")
    parser.add_argument("--last", action="store_true", help="the most recent transaction")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--trace-dir", type=Path, help="default: the configuration's data folder/traces")
    parser.add_argument("--pcap", type=Path, help="export: write the POS link as a pcap capture here")
    parser.add_argument(
        "--json", action="store_true", help="print the journey, the export's count or the stages as JSON"
    )


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except TraceFormatError as exc:  # not a trace, or a format newer than this acqsim
        print(f"acqsim trace: cannot read {exc}", file=sys.stderr)
        return EXIT_USAGE


def _run(args: argparse.Namespace) -> int:
    trace_dir = args.trace_dir or load_config(args.config).trace_dir
    if args.action == "stages":
        return _stages(trace_dir, as_json=args.json)
    if args.action == "export":
        if args.pcap is None:
            print("acqsim trace export: --pcap FILE is required", file=sys.stderr)
            return 2
        nac_trace = trace_dir / "nac.jsonl"
        if not nac_trace.is_file():
            print(f"acqsim trace export: no NAC trace at {nac_trace} (start the NAC with tracing on)", file=sys.stderr)
            return EXIT_USAGE
        count = export_pcap(nac_trace, args.pcap)
        if args.json:
            print(json.dumps({"frames": count, "pcap": str(args.pcap)}))
        else:
            print(f"{count} frame(s) written to {args.pcap} (card digits masked as 0, PIN blocks zeroed)")
        return EXIT_OK
    if args.last:
        found = last_transaction(load_records(trace_dir))
        if found is None:
            print(f"acqsim trace: no traced transaction in {trace_dir}", file=sys.stderr)
            return 1
        terminal, stan = found
    elif args.id and "-" in args.id:
        terminal, stan = args.id.removeprefix("T").split("-")[:2]
    else:
        print("acqsim trace show: give an ID (T<terminal>-<STAN>) or --last", file=sys.stderr)
        return 2
    lines = journey(trace_dir, terminal, stan)
    if not lines:
        print(f"acqsim trace: nothing traced for terminal {terminal} STAN {stan} in {trace_dir}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"terminal": terminal, "stan": stan, "hops": lines}))
        return EXIT_OK
    print(f"terminal {terminal}  STAN {stan}")
    print("\n".join(lines))
    return EXIT_OK


def _stages(trace_dir: Path, *, as_json: bool) -> int:
    reports = stage_report(load_records(trace_dir))
    if not reports:
        print(f"acqsim trace stages: no traced transaction in {trace_dir}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps({"trace_dir": str(trace_dir), "kinds": [report.as_json() for report in reports]}))
    else:
        print("\n".join(render_stages(reports)))
    return EXIT_OK
