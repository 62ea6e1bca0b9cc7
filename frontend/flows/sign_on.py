"""Network management (PROTOCOL.md §1): sign-on (new working keys, the next batch), sign-off, echo test."""

from __future__ import annotations

import dataclasses
from typing import Final

from frontend.effects import DropSession, GenerateWorkingKeys, OpenSession, PeerFailure
from frontend.flows.answer import Answer, Flow, done
from frontend.messages import Kind
from wire.constants import NetworkCode, ResponseCode, TxnType
from wire.fields import Field60, SignOnKeys

#: Field 62 carries each key's check value as its first 4 bytes (8 hex digits, PROTOCOL.md §1).
KCV_HEX: Final = 8
#: Field 60 of the answer when the request's could not be read: a network message, double-length keys.
DEFAULT_SIGN_ON_60: Final = Field60(txn_type=TxnType.NETWORK, network_code=NetworkCode.SIGN_ON_DOUBLE_KEYS)


def sign_on(answer: Answer, terminal_id: str, tmk_under_lmk: str) -> Flow:
    """New PIK and MAK (and with 60.3 = 004 a TDK) under the terminal's TMK (field 62) and the next batch
    number (60.2). The session keeps the TDK under the LMK, as it keeps PIK and MAK, for the HSM to decrypt the
    terminal's encrypted tracks (:mod:`frontend.flows.tdk`)."""
    f60 = answer.request.field60 or DEFAULT_SIGN_ON_60
    with_tdk = f60.network_code == NetworkCode.SIGN_ON_WITH_TDK
    keys = yield GenerateWorkingKeys(tmk_under_lmk, with_tdk=with_tdk)
    if isinstance(keys, PeerFailure):
        return (yield from done(answer.code(ResponseCode.SYSTEM_MALFUNCTION), None, Kind.SIGN_ON))
    pik, mak, *tdk = keys
    batch: str = yield OpenSession(terminal_id, pik.under_lmk, mak.under_lmk, tdk[0].under_lmk if tdk else None)
    answer.fields["60"] = dataclasses.replace(f60, batch=batch).encode()
    answer.fields["62"] = SignOnKeys(
        pik_under_tmk=pik.under_tmk,
        pik_kcv=pik.kcv[:KCV_HEX],
        mak_under_tmk=mak.under_tmk,
        mak_kcv=mak.kcv[:KCV_HEX],
        # 004: the track data key too (60 bytes, PROTOCOL.md §8)
        tdk_under_tmk=tdk[0].under_tmk if tdk else None,
        tdk_kcv=tdk[0].kcv[:KCV_HEX] if tdk else None,
    ).encode()
    return (yield from done(answer.code(ResponseCode.APPROVED), None, Kind.SIGN_ON))


def sign_off_or_echo(answer: Answer, kind: Kind, terminal_id: str) -> Flow:
    """Approved, with no MAC; a sign-off also ends the terminal's session."""
    if kind is Kind.SIGN_OFF:
        yield DropSession(terminal_id)
    return (yield from done(answer.code(ResponseCode.APPROVED), None, kind))
