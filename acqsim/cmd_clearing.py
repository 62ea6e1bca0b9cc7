"""``acqsim clearing run|show|load``: the scheme's end of day (docs/clearing.md).

run   --journal DB --date YYYYMMDD --out DIR    the switch writes one clearing file per member
show  FILE [--json]                             a clearing file's header, lines and totals (PAN masked)
load  FILE --db LEDGER --member ID              a member's ledger books the file and reconciles it
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from acqkit.exitcodes import EXIT_DECLINED, EXIT_OK, EXIT_USAGE
from acqsim.clearing_reconcile import JournalUnreadable, read_journal_entries, reconcile_acquirer
from acqsim.fourparty import ACQUIRER_ID, BINS, ISSUER_B_ID, ISSUER_C_ID, SWITCH_ID
from core_ledger.clearing import ClearingLoadError, load_clearing_file
from core_ledger.setup import open_store
from scheme.clearing import build_run, write_run
from scheme.fees import FeeTable
from scheme.journal import SwitchJournal
from wire.clearingfile import ClearingFileError, parse_clearing_file

#: The members of the four-party TEST world (acqsim/fourparty.py): every one gets a file, empty or not.
TEST_MEMBERS = (ACQUIRER_ID, ISSUER_B_ID, ISSUER_C_ID)
#: The TEST acquirer's own BINs.
ON_US = tuple(b.prefix for b in BINS if b.issuer_id == ACQUIRER_ID)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("run", "show", "load", "reconcile"),
        help="run: write the day's files; show: read one; load: book one in a ledger; reconcile: against a journal",
    )
    parser.add_argument("file", nargs="?", type=Path, help="show/load: the clearing file")
    parser.add_argument(
        "--journal", type=Path, help="run: the switch's journal; reconcile: the acquirer front-end's (SQLite)"
    )
    parser.add_argument(
        "--on-us",
        action="append",
        help=f"reconcile: a BIN prefix of the acquirer's own cards (default: the TEST world's, {' '.join(ON_US)})",
    )
    parser.add_argument("--date", help="run: the business date YYYYMMDD to clear (and what is left from before)")
    parser.add_argument("--out", type=Path, help="run: the folder the member files are written to")
    parser.add_argument(
        "--switch-id", default=SWITCH_ID, help=f"run: the switch's institution id (default {SWITCH_ID})"
    )
    parser.add_argument(
        "--member",
        action="append",
        help="run: a member that gets a file even without lines (default: the TEST world's)",
    )
    parser.add_argument("--db", help="load: the member's ledger store (SQLite path or postgresql:// URL)")
    parser.add_argument("--member-id", help="load: the member the ledger belongs to (8 digits)")
    parser.add_argument("--json", action="store_true", help="show/load/reconcile: JSON output")


def _money(fen: int) -> str:
    return f"{fen / 100:,.2f}"


def _run(args: argparse.Namespace) -> int:
    if not args.journal or not args.date or not args.out:
        print("acqsim clearing run: --journal, --date and --out are required", file=sys.stderr)
        return EXIT_USAGE
    if not args.journal.exists():
        print(f"acqsim clearing run: {args.journal}: no such journal", file=sys.stderr)
        return EXIT_USAGE
    journal = SwitchJournal(args.journal)
    try:
        records = journal.to_clear(args.date)
        run = build_run(
            records,
            business_date=args.date,
            switch_id=args.switch_id,
            members=args.member or TEST_MEMBERS,
            fees=FeeTable(),
        )
        paths = write_run(run, args.out)
        journal.mark_cleared(run.cleared, f"CLR{args.date}")
    finally:
        journal.close()
    for member, path in zip(run.files, paths, strict=True):
        totals = run.files[member].totals
        print(
            f"{member}  {totals.details:>4} line(s)  purchases {_money(totals.purchase_amount):>14}  "
            f"refunds {_money(totals.refund_amount):>12}  interchange {_money(totals.interchange):>10}  "
            f"network {_money(totals.network_fee):>8}  net {_money(totals.net):>14}  {path}"
        )
    print(f"switch network-fee income {_money(run.switch_income)}; positions balance: {run.balanced}")
    return EXIT_OK if run.balanced else EXIT_DECLINED


def _show(args: argparse.Namespace) -> int:
    try:
        clearing = parse_clearing_file(args.file.read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"acqsim clearing show: {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except ClearingFileError as exc:
        print(f"acqsim clearing show: {args.file}: {exc}", file=sys.stderr)
        return EXIT_DECLINED
    if args.json:
        print(
            json.dumps(
                {
                    "header": dataclasses.asdict(clearing.header),
                    "records": [dataclasses.asdict(r) for r in clearing.records],
                    "totals": dataclasses.asdict(clearing.totals),
                }
            )
        )
        return EXIT_OK
    header = clearing.header
    print(f"member {header.member_id}  business date {header.business_date}  switch {header.switch_id}")
    for r in clearing.records:
        print(
            f"{r.seq:>4} {r.role.value} {r.kind.value} {r.card_type.value} acq {r.acquirer_id} iss {r.issuer_id} "
            f"RRN {r.rrn} {r.masked_pan:<19} {_money(r.amount):>12} interchange {_money(r.interchange):>8} "
            f"network {_money(r.network_fee):>6} net {_money(r.net):>13}"
        )
    t = clearing.totals
    print(
        f"totals: {t.details} line(s), purchases {t.purchase_count} / {_money(t.purchase_amount)}, refunds "
        f"{t.refund_count} / {_money(t.refund_amount)}, interchange {_money(t.interchange)}, network "
        f"{_money(t.network_fee)}, net {_money(t.net)}"
    )
    return EXIT_OK


def _load(args: argparse.Namespace) -> int:
    if not args.db or not args.member_id:
        print("acqsim clearing load: FILE, --db and --member-id are required", file=sys.stderr)
        return EXIT_USAGE
    try:
        text = args.file.read_text(encoding="utf-8")
    except OSError as exc:
        print(f"acqsim clearing load: {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    store = open_store(args.db)
    try:
        load = load_clearing_file(store, text, member_id=args.member_id)
    except (ClearingFileError, ClearingLoadError) as exc:
        print(f"acqsim clearing load: {args.file}: {exc}; nothing loaded", file=sys.stderr)
        return EXIT_DECLINED
    finally:
        store.close()
    rec = load.reconciliation
    if args.json:
        print(json.dumps({"position": load.position, "reconciliation": dataclasses.asdict(rec)}))
    else:
        print(f"loaded {len(load.postings) - 1} line(s); position {_money(load.position)} (positive: the switch pays)")
        print(
            f"reconciliation: {len(rec.matched)} matched, {len(rec.amount_diffs)} amount difference(s), "
            f"{len(rec.unmatched_clearing)} line(s) without an authorisation, "
            f"{len(rec.unmatched_authorisations)} authorisation(s) not cleared"
        )
        for key, cleared, authorised in rec.amount_diffs:
            print(f"  amount differs: {key} cleared {_money(cleared)} authorised {_money(authorised)}")
        for seq in rec.unmatched_clearing:
            print(f"  line {seq}: no authorisation (booked to suspense)")
        for key in rec.unmatched_authorisations:
            print(f"  authorised, not cleared: {key}")
    return EXIT_OK if rec.clean else EXIT_DECLINED


def _reconcile(args: argparse.Namespace) -> int:
    if args.journal is None:
        print("acqsim clearing reconcile: FILE and --journal are required", file=sys.stderr)
        return EXIT_USAGE
    try:
        clearing = parse_clearing_file(args.file.read_text(encoding="utf-8"))
        entries = read_journal_entries(args.journal)
    except (OSError, JournalUnreadable) as exc:
        print(f"acqsim clearing reconcile: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ClearingFileError as exc:
        print(f"acqsim clearing reconcile: {args.file}: {exc}", file=sys.stderr)
        return EXIT_DECLINED
    result = reconcile_acquirer(clearing, entries, on_us=args.on_us or ON_US)
    if args.json:
        print(json.dumps(dataclasses.asdict(result)))
    else:
        print(
            f"{len(result.matched)} matched, {len(result.amount_diffs)} amount difference(s), "
            f"{len(result.without_authorisation)} cleared without an authorisation, "
            f"{len(result.not_cleared)} authorised off-us not cleared"
        )
        for rrn, cleared, authorised in result.amount_diffs:
            print(f"  RRN {rrn}: cleared {_money(cleared)}, authorised {_money(authorised)}")
        for rrn in result.without_authorisation:
            print(f"  RRN {rrn}: cleared, no approved authorisation in the journal")
        for rrn in result.not_cleared:
            print(f"  RRN {rrn}: approved, not in the clearing file")
    return EXIT_OK if result.clean else EXIT_DECLINED


def run(args: argparse.Namespace) -> int:
    if args.action == "run":
        return _run(args)
    if args.file is None:
        print(f"acqsim clearing {args.action}: FILE is required", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "reconcile":
        return _reconcile(args)
    return _show(args) if args.action == "show" else _load(args)
