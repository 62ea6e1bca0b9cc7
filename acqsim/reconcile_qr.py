"""QR rows of the front-end journal against the wallet host's store (part of ``acqsim ledger reconcile``).

A QR payment's money moves at the wallet, not at the ledger, so its journal rows are matched with the
wallet's records by the request's key (terminal, STAN, date — what the front-end sent the wallet):

- an ``approved`` (or ``voided``) QR sale is paid (or voided) at the wallet — as a scanned code, or as the
  order it was created as (主扫);
- a ``reversed`` or ``declined`` QR sale is not paid at the wallet (a reversal still queued for the wallet
  is reported as pending, not as a difference);
- every payment the wallet holds as paid for a scanned code has a journal row.

Voids and refunds are checked through their sale (a voided sale is voided at the wallet), and by their own key:
an approved one was given back at the wallet; a reversed, declined or pending one was not, or was undone (or
its ``RVGB`` is still queued). Read-only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Final, Protocol

from wallet.model import OrderState, PaymentState, WalletBook
from wallet.store import WalletStore, WalletStoreError
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError
from wire.tlvlink import decode_message
from wire.walletlink import WALLET_LINK, Kind

QR_KINDS: Final = frozenset({"qr_sale", "qr_void", "qr_refund"})
PAID: Final = frozenset({PaymentState.PAID, PaymentState.VOIDED})
#: journal kind → the wallet request that gives money back
GIVE_BACK_KINDS: Final = {"qr_void": Kind.VOID, "qr_refund": Kind.REFUND}


class Row(Protocol):
    """A journal row, as :mod:`acqsim.reconcile` reads it."""

    @property
    def terminal_id(self) -> str: ...
    @property
    def stan(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def local_date(self) -> str: ...
    @property
    def rrn(self) -> str: ...


def _key(kind: str, row: Row) -> str:
    return f"{kind} {row.terminal_id} {row.stan} {row.local_date}"


def read_wallet(path: Path) -> WalletBook:
    if not path.is_file():
        raise WalletStoreError(f"no wallet store at {path}")
    store = WalletStore(path)
    try:
        return store.load()
    finally:
        store.close()


def queued_wallet_reversals(journal: Path) -> set[str]:
    """The keys whose reversal is still queued at the front-end for the wallet: a payment's (``PAYC …``) or a
    void's or refund's (``RVGB …``)."""
    db = sqlite3.connect(f"{journal.resolve().as_uri()}?mode=ro", uri=True)
    try:
        texts = [str(t) for (t,) in db.execute("SELECT message FROM wallet_reversals")]
    except sqlite3.OperationalError:  # a journal from before QR payments
        texts = []
    finally:
        db.close()
    keys = set()
    for text in texts:
        try:
            message = decode_message(text.encode("ascii"), WALLET_LINK)
        except MessageDecodeError:
            continue
        # A payment's reversal is matched by the payment's key; a give-back's by its own.
        named = Kind.PAY if message.kind == Kind.REVERSE else message.kind
        keys.add(f"{named} {message['TI']} {message['ST']} {message['DT']}")
    return keys


Problem = tuple[str, str, "Row | None"]  # (RRN, what is wrong, the journal row)


def _give_back_problem(row: Row, book: WalletBook, queued: set[str]) -> str | None:
    """What is wrong with a void or refund row at the wallet, if anything: approved there exactly when the
    journal says approved (a reversed one may still have its ``RVGB`` on the way)."""
    text = book.answered.get(_key(GIVE_BACK_KINDS[row.kind], row))
    given = text is not None and decode_message(text.encode("ascii"), WALLET_LINK).result == ResponseCode.APPROVED
    if row.status == "approved" and not given:
        return "approved in the journal, not given back at the wallet"
    if row.status in ("reversed", "declined", "pending") and given:
        if row.status == "reversed" and _key(Kind.REVERSE_GIVE_BACK, row) in queued:
            return None  # the reversal is on its way (store-and-forward)
        return f"{row.status} in the journal, given back at the wallet"
    return None


def reconcile_qr(rows: Iterable[Row], book: WalletBook, queued: set[str]) -> tuple[int, list[Problem]]:
    """(matched, [(rrn, problem, row)]) for the QR rows of ``rows``."""
    payments = {p.key: p for p in book.payments.values()}
    orders = {o.key: o for o in book.orders.values()}
    matched = 0
    problems: list[Problem] = []
    seen: set[str] = set()
    for row in rows:
        if row.kind not in QR_KINDS:
            continue
        if row.kind != "qr_sale":
            problem = _give_back_problem(row, book, queued)
            if problem is None:
                matched += 1
            else:
                problems.append((row.rrn, problem, row))
            continue
        pay_key = _key(Kind.PAY, row)
        seen.add(pay_key)
        payment = payments.get(pay_key)
        order = orders.get(_key(Kind.ORDER, row))
        paid = (payment is not None and payment.state in PAID) or (order is not None and order.state is OrderState.PAID)
        if row.status in ("approved", "voided"):
            if paid:
                matched += 1
            else:
                problems.append((row.rrn, "approved in the journal, not paid at the wallet", row))
        elif row.status in ("reversed", "declined") and paid:
            if pay_key in queued:
                matched += 1  # the reversal is on its way (store-and-forward)
            else:
                problems.append((row.rrn, f"{row.status} in the journal, paid at the wallet", row))
        else:
            matched += 1
    for key, payment in sorted(payments.items()):
        if key.startswith(Kind.PAY) and payment.state is PaymentState.PAID and key not in seen:
            problems.append(("", f"paid at the wallet ({payment.terminal_id}), no journal row", None))
    return matched, problems
