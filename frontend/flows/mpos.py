"""MPOS requests whose card was read by a DUKPT reader (docs/chip.md): field 53 = ``2620000000000000``, 62 =
scheme ‖ KSN ‖ track 2 under the KSN's DUKPT data key, 52 under its DUKPT PIN key. The front-end never derives
a DUKPT key: the HSM decrypts the track (M2) and verifies the PIN (GQ) from the BDK under the LMK and the KSN.

:func:`open_mpos` turns such a request into one that carries its clear track 2 in field 35 (in memory only: the
journal keeps the card masked, and the answer carries no card number), with the reader's KSN for the PIN check.
Codes: a 62 that does not parse, or a track that is not one → 30; a KSN whose key set no BDK of the registry
serves (an unknown reader) → 58; a KSN counter DUKPT never uses → 30; a KSN counter the reader already used,
or one too far behind → 94 (:func:`use_ksn`). Each logs one line; nothing posts.

TDES (X9.24-1) and AES-128 (X9.24-3) readers both: an AES reader's KSN is 12 bytes (its first 8, the initial
key id, name the BDK by their first 5, as a TDES KSN's key set id does) and its ISO 9564 format 4 PIN block
comes in 62 (16 bytes do not fit 52); it is put in 52 in memory, like the clear track in 35, for GQ's AES
layout.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Generator
from typing import Any, Final

from frontend.effects import CounterVerdict, DecryptTrack, Effect, PeerFailure, UseCounter
from frontend.registry import Registry
from wire.constants import SECURITY_CONTROL_DUKPT, ResponseCode
from wire.dukpt import (
    AES_KSN_LEN,
    SCHEME_AES,
    DukptTrackData,
    aes_counter_usable,
    aes_split_ksn,
    tdes_counter,
    tdes_counter_usable,
    tdes_initial_ksn,
)
from wire.errors import MessageDecodeError
from wire.posmessage import PosMessage

log = logging.getLogger("acqsim.frontend")

#: The key set id: the KSN's first 5 bytes name the BDK (ANSI X9.24-1).
KSI_LEN: Final = 5
KSN_SCOPE: Final = "ksn"
#: A reader uses its counters in order; a few may arrive out of order (a reversal after its purchase).
KSN_WINDOW: Final = 16
TRACK_CHARACTERS: Final = frozenset("0123456789=")
TRACK_PAD: Final = b"\0"


@dataclasses.dataclass(frozen=True, slots=True)
class MposRead:
    """What the PIN check and the replay check need of the reader: its BDK (under the LMK) and KSN."""

    bdk_under_lmk: str
    ksn: bytes


def is_mpos(request: PosMessage) -> bool:
    return request.get("53") == SECURITY_CONTROL_DUKPT


def _refuse(request: PosMessage, why: str, code: ResponseCode) -> ResponseCode:
    log.warning("terminal %s STAN %s: MPOS %s: answered %s, nothing posted", request.terminal_id, request.stan, why,
                code.value)  # fmt: skip
    return code


def open_mpos(
    request: PosMessage, registry: Registry
) -> Generator[Effect, Any, tuple[PosMessage, MposRead] | ResponseCode]:
    """The request with its clear track 2 (field 35, from the HSM), and the reader's BDK and KSN."""
    try:
        data = DukptTrackData.parse(request.get("62"))
    except MessageDecodeError as exc:
        return _refuse(request, f"field 62 refused ({exc})", ResponseCode.FORMAT_ERROR)
    key_set = data.ksn[:KSI_LEN].hex().upper()
    bdk = registry.bdks.get(key_set)
    if bdk is None:
        return _refuse(request, f"unknown KSN (key set {key_set} has no BDK)", ResponseCode.NOT_PERMITTED_TO_TERMINAL)
    if not _counter_usable(data):
        return _refuse(request, "KSN counter DUKPT never uses", ResponseCode.FORMAT_ERROR)
    clear = yield DecryptTrack(bdk, data.ksn, data.track_ciphertext)
    if isinstance(clear, PeerFailure):
        return _refuse(request, f"track not decrypted ({clear.kind.value})", ResponseCode.SYSTEM_MALFUNCTION)
    track = clear.rstrip(TRACK_PAD).decode("ascii", "replace")
    if not track or not set(track) <= TRACK_CHARACTERS or track.count("=") != 1:
        return _refuse(request, "the decrypted track 2 is not a track (wrong key?)", ResponseCode.FORMAT_ERROR)
    fields = {**request.fields, "35": track}
    if data.pin_block is not None:
        fields["52"] = data.pin_block.hex().upper()  # in memory only: the AES block GQ verifies
    return dataclasses.replace(request, fields=fields), MposRead(bdk, data.ksn)


def _counter_usable(data: DukptTrackData) -> bool:
    if data.scheme == SCHEME_AES:
        return aes_counter_usable(aes_split_ksn(data.ksn)[1])
    return tdes_counter_usable(tdes_counter(data.ksn))


def _reader_and_counter(ksn: bytes) -> tuple[str, int]:
    """The reader (its KSN without the counter) and the counter, for either scheme (by the KSN's length)."""
    if len(ksn) == AES_KSN_LEN:
        key_id, counter = aes_split_ksn(ksn)
        return key_id.hex().upper(), counter
    return tdes_initial_ksn(ksn).hex().upper(), tdes_counter(ksn)


def use_ksn(request: PosMessage, read: MposRead) -> Generator[Effect, Any, ResponseCode | None]:
    """Record the reader's counter unless it was used before (a replayed or re-sent reader output) → 94."""
    reader, counter = _reader_and_counter(read.ksn)
    verdict = yield UseCounter(KSN_SCOPE, reader, counter, KSN_WINDOW)
    if verdict is not CounterVerdict.FRESH:
        return _refuse(request, f"DUKPT counter {verdict.value}", ResponseCode.DUPLICATE)
    return None
