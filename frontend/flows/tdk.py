"""Requests whose tracks are encrypted under the terminal's track data key (PROTOCOL.md §8): field 53 =
``2610000000000000``. The TDK came to the terminal at its 004 sign-on and stays in the session under the LMK;
the front-end never holds it in clear: each track's one encrypted block goes to the HSM (M2 kind D) and the
clear track is put back in the request, in memory only (the journal keeps the card masked), before the PIN
check reads its PVV.

Codes, each with one log line and nothing posted:
- 30 (format error): the session has no TDK (the terminal signed on with 003, yet says its tracks are
  encrypted), a track too short to hold an encrypted block, or one that does not decrypt to a track — a wrong
  TDK or garbage ciphertext turns the block into hex digits a track cannot hold. 30 rather than 14 (invalid
  card): the request is malformed as sent; the card number it meant is unknown, not invalid. (A wrong block that
  happened to decrypt to digits would name another card, which the ledger answers 14.)
- 96 (system malfunction): the HSM gave no answer.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator
from typing import Any, Final

from frontend.effects import DecryptTrackBlock, Effect, PeerFailure
from frontend.records import Session
from wire.constants import SECURITY_CONTROL_FORMAT0_TDES_TDK, ResponseCode
from wire.paycrypto import CryptoInputError
from wire.posmessage import PosMessage
from wire.specs import CLEAR_TRACK_CHARS, POS_TRACK_FIELDS
from wire.trackcrypt import EncryptedTrack

log = logging.getLogger("acqsim.frontend")

#: The tracks a terminal encrypts, in field order: track 2 and, if it sends one, track 3.
TRACK_FIELDS: Final = tuple(sorted(POS_TRACK_FIELDS, key=int))
#: Track 2 has exactly one separator.
TRACK2: Final = "35"


def has_encrypted_tracks(request: PosMessage) -> bool:
    return request.get("53") == SECURITY_CONTROL_FORMAT0_TDES_TDK


def _refuse(request: PosMessage, why: str, code: ResponseCode) -> ResponseCode:
    log.warning("terminal %s STAN %s: TDK track %s: answered %s, nothing posted", request.terminal_id, request.stan,
                why, code.value)  # fmt: skip
    return code


def _is_track(field: str, track: str) -> bool:
    if not CLEAR_TRACK_CHARS.issuperset(track):
        return False
    return track.count("=") == 1 if field == TRACK2 else True


def open_tracks(request: PosMessage, session: Session) -> Generator[Effect, Any, PosMessage | ResponseCode]:
    """The request with its tracks in clear (from the HSM), or the code that refuses it."""
    if session.tdk is None:
        return _refuse(
            request, "sent encrypted but the session has no TDK (signed on with 003)", ResponseCode.FORMAT_ERROR
        )
    fields = dict(request.fields)
    for field in TRACK_FIELDS:
        value = request.get(field)
        if not value:
            continue
        try:
            encrypted = EncryptedTrack.split(value)
        except CryptoInputError:
            return _refuse(request, f"field {field} too short to hold an encrypted block", ResponseCode.FORMAT_ERROR)
        clear_block = yield DecryptTrackBlock(session.tdk, encrypted.block)
        if isinstance(clear_block, PeerFailure):
            return _refuse(
                request, f"field {field} not decrypted ({clear_block.kind.value})", ResponseCode.SYSTEM_MALFUNCTION
            )
        track = encrypted.with_clear_block(clear_block)
        if not _is_track(field, track):
            return _refuse(
                request, f"field {field} does not decrypt to a track (wrong TDK?)", ResponseCode.FORMAT_ERROR
            )
        fields[field] = track
    return dataclasses.replace(request, fields=fields)
