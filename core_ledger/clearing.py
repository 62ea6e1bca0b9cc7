"""Loading the scheme's clearing file into a member's ledger: fees, the net position, reconciliation. No I/O
but for :func:`load_clearing_file` (docs/clearing.md).

Per line, with s = +1 for a purchase and −1 for a refund, A the amount, F the interchange, N the member's half of
the network fee and ``net`` the line's signed net (positive: the switch pays the member), one booking
``CLR|<member>|<date>|<seq>`` whose entries sum to zero:

    acquirer line (role A):  ACQ-CLEARING +s·A, SCHEME-SETTLEMENT −net, SCHEME-INTERCHANGE −s·F,
                             SCHEME-NETWORK-FEES −N
    issuer line (role I):    ACQ-CLEARING −s·A, SCHEME-SETTLEMENT −net, SCHEME-INTERCHANGE +s·F,
                             SCHEME-NETWORK-FEES −N

An acquirer line puts the merchant's gross into the clearing account under the merchant's id, so the ordinary
settlement run (:mod:`core_ledger.settlement`) pays it to the merchant (一清) or its aggregator (二清). An issuer
line takes back out of clearing what the card holder's authorisation put there, and marks that authorisation
settled; a line whose authorisation the ledger does not have (a stand-in approval, say) books against
``SCHEME-SUSPENSE`` instead and is reported. SCHEME-SETTLEMENT ends the day at −(the member's position): what
the switch owes the member (negative balance) or the member owes the switch.

Reconciliation (issuer lines, against the ledger's own authorisations): matched, amount differences, lines
without an authorisation, and authorisations through the switch (acquired by another member) that no line
cleared. The load is all or nothing: a file that does not parse (the bad line named), is for another member,
or was loaded before changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

from core_ledger.api import LedgerAnswer, LedgerOp
from core_ledger.model import (
    CLEARING_ACCOUNT,
    Account,
    AccountKind,
    BookOp,
    Entry,
    Txn,
    TxnStatus,
    key_text,
)
from core_ledger.state import LedgerState
from core_ledger.store import LedgerStore, Posting
from wire.clearingfile import ClearingFile, ClearingRecord, Kind, Role, parse_clearing_file
from wire.constants import ResponseCode

SCHEME_SETTLEMENT_ACCOUNT: Final = "SCHEME-SETTLEMENT"
INTERCHANGE_ACCOUNT: Final = "SCHEME-INTERCHANGE"
NETWORK_FEE_ACCOUNT: Final = "SCHEME-NETWORK-FEES"
SUSPENSE_ACCOUNT: Final = "SCHEME-SUSPENSE"
SCHEME_ACCOUNTS: Final = (
    (SCHEME_SETTLEMENT_ACCOUNT, AccountKind.CLEARING, "scheme settlement position"),
    (INTERCHANGE_ACCOUNT, AccountKind.FEE_INCOME, "interchange (issuer fee): earned as issuer, paid as acquirer"),
    (NETWORK_FEE_ACCOUNT, AccountKind.FEE_INCOME, "scheme network fees paid"),
    (SUSPENSE_ACCOUNT, AccountKind.CLEARING, "cleared lines without an authorisation"),
)
LINE_KEY_PREFIX: Final = "CLR|"
FILE_KEY_PREFIX: Final = "CLRFILE|"
#: Operations whose authorisation a clearing line settles at the issuer.
CLEARED_OPS: Final = frozenset({LedgerOp.PURCHASE, LedgerOp.PREAUTH_COMPLETION, LedgerOp.REFUND})


class ClearingLoadError(Exception):
    """The file cannot be loaded into this ledger (another member's, or loaded before): nothing changed."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Reconciliation:
    matched: tuple[str, ...] = ()  # transaction keys
    amount_diffs: tuple[tuple[str, int, int], ...] = ()  # (key, clearing amount, authorised amount)
    unmatched_clearing: tuple[int, ...] = ()  # line seqs without an authorisation
    unmatched_authorisations: tuple[str, ...] = ()  # keys no line cleared

    @property
    def clean(self) -> bool:
        return not (self.amount_diffs or self.unmatched_clearing or self.unmatched_authorisations)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ClearingLoad:
    member_id: str
    business_date: str
    postings: tuple[Posting, ...]
    settled_keys: tuple[str, ...]
    new_accounts: tuple[Account, ...]
    position: int  # Σ net: positive, the switch pays this member
    reconciliation: Reconciliation


def _book(key: str, record: ClearingRecord | None, business_date: str, effects: tuple[Entry, ...]) -> Txn:
    return Txn(
        key=key,
        op=BookOp.SCHEME_CLEARING,
        pan="",
        amount=record.amount if record is not None else 0,
        terminal_id=record.terminal_id if record is not None else "",
        merchant_id=record.merchant_id if record is not None and record.role is Role.ACQUIRER else "",
        business_date=business_date,
        rrn=record.rrn if record is not None else "",
        fingerprint=BookOp.SCHEME_CLEARING.value,
        answer=LedgerAnswer(response_code=ResponseCode.APPROVED, rrn=""),
        status=TxnStatus.POSTED,
        effects=effects,
        settled=record is None or record.role is Role.ISSUER,  # acquirer lines wait for the merchant run
    )


def _authorisation(state: LedgerState, record: ClearingRecord) -> Txn | None:
    txn = state.txns.get(key_text((record.acquirer_id, record.rrn)))
    if txn is None or txn.status is not TxnStatus.POSTED or txn.op not in CLEARED_OPS:
        return None
    return txn


def plan_clearing_load(
    state: LedgerState, clearing: ClearingFile, *, member_id: str, own_acquirer_ids: Iterable[str] = ()
) -> ClearingLoad:
    header = clearing.header
    if header.member_id != member_id:
        raise ClearingLoadError(f"the file is for member {header.member_id}, this ledger is {member_id}")
    file_key = f"{FILE_KEY_PREFIX}{member_id}|{header.business_date}"
    if file_key in state.txns:
        raise ClearingLoadError(f"the clearing file of {header.business_date} was loaded before")
    postings: list[Posting] = []
    settled: list[str] = []
    matched: list[str] = []
    diffs: list[tuple[str, int, int]] = []
    unmatched: list[int] = []
    for record in clearing.records:
        sign = 1 if record.kind is Kind.PURCHASE else -1
        effects: tuple[Entry, ...]
        if record.role is Role.ACQUIRER:
            effects = (
                Entry(CLEARING_ACCOUNT, sign * record.amount),
                Entry(SCHEME_SETTLEMENT_ACCOUNT, -record.net),
                Entry(INTERCHANGE_ACCOUNT, -sign * record.interchange),
                Entry(NETWORK_FEE_ACCOUNT, -record.network_fee),
            )
        else:
            txn = _authorisation(state, record)
            holding = CLEARING_ACCOUNT
            if txn is None:
                unmatched.append(record.seq)
                holding = SUSPENSE_ACCOUNT
            else:
                settled.append(txn.key)
                if txn.amount == record.amount:
                    matched.append(txn.key)
                else:
                    diffs.append((txn.key, record.amount, txn.amount))
            effects = (
                Entry(holding, -sign * record.amount),
                Entry(SCHEME_SETTLEMENT_ACCOUNT, -record.net),
                Entry(INTERCHANGE_ACCOUNT, sign * record.interchange),
                Entry(NETWORK_FEE_ACCOUNT, -record.network_fee),
            )
        effects = tuple(e for e in effects if e.amount)
        key = f"{LINE_KEY_PREFIX}{member_id}|{header.business_date}|{record.seq}"
        postings.append(((_book(key, record, header.business_date, effects),), effects))
    postings.append(((_book(file_key, None, header.business_date, ()),), ()))
    cleared = set(settled)
    own = set(own_acquirer_ids) | {member_id}
    unmatched_auth = tuple(
        sorted(
            txn.key
            for txn in state.txns.values()
            if txn.op in CLEARED_OPS
            and txn.status is TxnStatus.POSTED
            and not txn.settled
            and txn.business_date <= header.business_date
            and txn.key.split("|", 1)[0] not in own
            and txn.key not in cleared
        )
    )
    new_accounts = tuple(
        Account(account_id=account_id, kind=kind, name=name)
        for account_id, kind, name in SCHEME_ACCOUNTS
        if account_id not in state.accounts
    )
    return ClearingLoad(
        member_id=member_id,
        business_date=header.business_date,
        postings=tuple(postings),
        settled_keys=tuple(settled),
        new_accounts=new_accounts,
        position=sum(r.net for r in clearing.records),
        reconciliation=Reconciliation(
            matched=tuple(matched),
            amount_diffs=tuple(diffs),
            unmatched_clearing=tuple(unmatched),
            unmatched_authorisations=unmatched_auth,
        ),
    )


def load_clearing_file(
    store: LedgerStore, text: str, *, member_id: str, own_acquirer_ids: Iterable[str] = ()
) -> ClearingLoad:
    """Parse, plan and commit in one store transaction. Raises :class:`wire.clearingfile.ClearingFileError`
    (the bad line named) or :class:`ClearingLoadError` with nothing written."""
    clearing = parse_clearing_file(text)
    state = store.load()
    load = plan_clearing_load(state, clearing, member_id=member_id, own_acquirer_ids=own_acquirer_ids)
    if load.new_accounts:
        state.accounts.update({a.account_id: a for a in load.new_accounts})
        store.save_static(state)
    store.commit(load.postings, settled=load.settled_keys)
    return load
