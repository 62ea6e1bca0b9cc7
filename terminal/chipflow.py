"""How the terminal reads a card for a chip transaction, sans-IO: contact (05x), contactless (07x), or the
stripe after a chip failure (fallback 80x, 60.5 = 2); and the field 55 of the messages that follow a chip
transaction (reversal, script-result advice), PROTOCOL.md §7.

:func:`read_card` runs the simulated card's first GENERATE AC and returns a :class:`CardRead` the session puts
into the request (22, 23, 55, 60.4/60.5). The card's ATC is written into the terminal's state by the caller
before the request leaves.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import secrets
from typing import Final

from acqkit.config import CardFixture
from terminal.chipcard import ChipBehaviour, ChipCard, ChipReadError, Completion, TerminalData
from wire.constants import (
    CHIP_CONDITION_FALLBACK,
    CHIP_CONDITION_NORMAL,
    READ_CAPABILITY_STRIPE_CONTACT_CONTACTLESS,
)
from wire.icc import REQUEST_TAGS, REVERSAL_TAGS, SCRIPT_ADVICE_TAGS, build_icc

#: The terminal's own data objects (TEST values): capabilities, type, IFD serial number, CVM results.
TERMINAL_CAPABILITIES: Final = bytes.fromhex("E0E1C8")
TERMINAL_TYPE: Final = bytes.fromhex("22")
CVM_OFFLINE_NONE_ONLINE_PIN: Final = bytes.fromhex("420300")
CVM_NO_CVM: Final = bytes.fromhex("1F0302")
TVR_CLEAN: Final = bytes(5)


class ReadMode(enum.StrEnum):
    """How the card is presented (field 22's first two digits)."""

    CONTACT = "05"
    CONTACTLESS = "07"
    FALLBACK = "80"  # the chip failed: the stripe was read
    SWIPE = "02"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CardRead:
    """What the request carries from the card read: entry mode digits, PSN, field 55 and 60.4/60.5."""

    mode: ReadMode
    psn: str = ""
    icc: bytes = b""
    values: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)
    chip_condition: str = CHIP_CONDITION_NORMAL

    @property
    def field_60_extra(self) -> str:
        return READ_CAPABILITY_STRIPE_CONTACT_CONTACTLESS + self.chip_condition

    @property
    def is_chip(self) -> bool:
        return self.mode in (ReadMode.CONTACT, ReadMode.CONTACTLESS)


def ifd_serial(terminal_id: str) -> bytes:
    """Tag 9F1E: the terminal's 8-character IFD serial number (its id)."""
    return terminal_id.encode("ascii")[:8].ljust(8, b"0")


def read_card(
    card: CardFixture,
    *,
    imk: bytes,
    atc: int,
    mode: ReadMode,
    amount: int,
    terminal_id: str,
    now: dt.datetime,
    pin_entered: bool,
    force_chip_failure: bool = False,
) -> tuple[CardRead, ChipCard | None]:
    """Present ``card`` in ``mode``; a chip that does not answer falls back to the stripe (80x, 60.5 = 2)."""
    if mode in (ReadMode.SWIPE, ReadMode.FALLBACK):
        condition = CHIP_CONDITION_FALLBACK if mode is ReadMode.FALLBACK else CHIP_CONDITION_NORMAL
        return CardRead(mode=mode, chip_condition=condition), None
    behaviour = ChipBehaviour.FAILS if force_chip_failure else ChipBehaviour(card.chip)
    chip = ChipCard.personalise(imk=imk, pan=card.pan, psn=card.psn, atc=atc, behaviour=behaviour)
    data = TerminalData(amount=amount, date=now.strftime("%y%m%d"), unpredictable_number=secrets.token_bytes(4))
    try:
        values = chip.first_generate_ac(data)
    except ChipReadError:
        return CardRead(mode=ReadMode.FALLBACK, chip_condition=CHIP_CONDITION_FALLBACK), None
    values |= {
        "9F33": TERMINAL_CAPABILITIES,
        "9F34": CVM_OFFLINE_NONE_ONLINE_PIN if pin_entered else CVM_NO_CVM,
        "9F35": TERMINAL_TYPE,
        "9F1E": ifd_serial(terminal_id),
    }
    return CardRead(mode=mode, psn=card.psn, icc=build_icc(values, REQUEST_TAGS), values=values), chip


def reversal_icc(values: dict[str, bytes], completion: Completion | None = None) -> bytes:
    """55 of a chip reversal: 95 9F1E 9F10 9F36 (and DF31 when scripts ran), as the card last left them."""
    chosen: dict[str, bytes] = {tag: values[tag] for tag in ("95", "9F1E", "9F10", "9F36") if tag in values}
    if completion is not None:
        chosen |= {"95": completion.tvr, "9F10": completion.iad}
        if completion.scripts_ran:
            chosen["DF31"] = completion.script_results
    return build_icc(chosen, REVERSAL_TAGS)


def script_advice_icc(values: dict[str, bytes], completion: Completion) -> bytes:
    """55 of the 0620 script-result advice (PROTOCOL.md §7 order)."""
    chosen: dict[str, bytes] = {tag: values[tag] for tag in SCRIPT_ADVICE_TAGS if tag in values}
    chosen |= {"95": completion.tvr, "9F10": completion.iad, "DF31": completion.script_results}
    return build_icc(chosen, SCRIPT_ADVICE_TAGS)
