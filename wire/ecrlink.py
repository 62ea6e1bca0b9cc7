"""The cash-register (ECR) link: a till ↔ the card terminal beside it (docs/ecr.md).

Frames as on every acqsim link (2-byte big-endian length); each payload is one TLV message
(:mod:`wire.tlvlink`). The till asks, the terminal answers; one request at a time per connection.

- ``SALE`` ``AM`` amount (minor units) ``ER`` the till's reference → ``RC`` ``PM`` masked PAN ``RR`` RRN
  ``AC`` authorisation code ``ST`` STAN ``TX`` result in words;
- ``VOID`` ``ER`` the reference of the sale to cancel → as SALE;
- ``STAT`` (optional ``ER``) → ``RC`` 00 and ``ON`` the terminal's state (``READY``, ``NOT-SIGNED-ON``,
  ``REVERSAL-PENDING``), and, with ``ER``, that sale's ``RC`` ``RR`` ``AC`` ``PM``;
- ``ERRR`` (answer only) to a frame the terminal could not read: ``RC`` 30 and ``TX`` naming the tag and
  offset. The terminal keeps serving the connection.

``RC`` is the card host's response code (PROTOCOL.md §3a); :data:`NO_ANSWER` (``98``) when the host did
not answer (the terminal has queued a reversal).
"""

from __future__ import annotations

from typing import Final

from wire.tlvlink import COMMON_TAGS, ERROR_KIND, KIND_ERROR, KindSpec, LinkSpec, TagSpec

ECR_LINK_NAME: Final = "ECR link"
#: The port a terminal serves its ECR link on unless told otherwise.
DEFAULT_ECR_LINK_PORT: Final = 5830
NO_ANSWER: Final = "98"


class EcrKind:
    SALE = "SALE"
    VOID = "VOID"
    STATUS = "STAT"
    ERROR = KIND_ERROR


class TerminalState:
    """``ON`` values of a STAT answer."""

    READY = "READY"
    NOT_SIGNED_ON = "NOT-SIGNED-ON"
    REVERSAL_PENDING = "REV-PENDING"


_RESULT: Final = frozenset({"RC"})

ECR_LINK: Final = LinkSpec(
    ECR_LINK_NAME,
    tags={
        **COMMON_TAGS,
        "AM": TagSpec("amount in minor units", 12, digits=True),
        "ER": TagSpec("the till's reference", 20),
        "PM": TagSpec("masked PAN", 19, min_len=4),
        "RR": TagSpec("retrieval reference number", 12, min_len=12),
        "AC": TagSpec("authorisation code", 6, min_len=6),
        "ST": TagSpec("terminal's STAN", 6, digits=True, min_len=6),
        "ON": TagSpec("terminal state", 16),
        "TI": TagSpec("terminal id", 8, min_len=8),
    },
    kinds={
        EcrKind.SALE: KindSpec("card sale for an amount", frozenset({"AM", "ER"}), _RESULT),
        EcrKind.VOID: KindSpec("cancel a sale by its reference", frozenset({"ER"}), _RESULT),
        EcrKind.STATUS: KindSpec("terminal state, or one sale's result", frozenset(), _RESULT),
        EcrKind.ERROR: ERROR_KIND,
    },
)
