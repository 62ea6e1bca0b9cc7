"""PAN and track masking used by every printer, log line, trace and receipt: first 6 and last 4 digits.

Anything shorter than 11 digits keeps only its last 4 digits visible: masking must never reveal more than
a full-length PAN would.
"""

from __future__ import annotations

from typing import Final

VISIBLE_HEAD: Final = 6
VISIBLE_TAIL: Final = 4
MASK_CHAR: Final = "*"


def mask_pan(pan: str) -> str:
    """``6200001000000003`` → ``620000******0003``."""
    if len(pan) > VISIBLE_HEAD + VISIBLE_TAIL:
        return pan[:VISIBLE_HEAD] + MASK_CHAR * (len(pan) - VISIBLE_HEAD - VISIBLE_TAIL) + pan[-VISIBLE_TAIL:]
    if len(pan) > VISIBLE_TAIL:
        return MASK_CHAR * (len(pan) - VISIBLE_TAIL) + pan[-VISIBLE_TAIL:]
    return MASK_CHAR * len(pan)


def mask_track(track: str) -> str:
    """Mask the PAN part of a track and hide everything after the separator (expiry, PVV, CVV)."""
    pan, sep, rest = track.partition("=")
    return mask_pan(pan) + (sep + MASK_CHAR * len(rest) if sep else "")
