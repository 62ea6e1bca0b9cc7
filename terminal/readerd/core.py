"""The reader service's logic, sans-IO: one request frame in, one answer frame out (:mod:`wire.readerlink`).

The reader holds only its DUKPT initial key (from ``load``) and the last counter it used, in memory: a
restarted reader must be injected again (its counter then starts again, under a new initial key in practice).
Its simulated card slot holds the configured TEST cards; a ``read`` swipes one of them and, if asked, keys its
TEST PIN (or a wrong one) on the reader's pad. Every refusal is an error answer; nothing ends the service.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

from acqkit.config import CardFixture
from terminal.reader import DukptReader, DukptScheme, ReaderError, ReaderExhausted
from wire.dukpt import AES_KEY_ID_LEN
from wire.readerlink import (
    LinkError,
    LoadKeys,
    ReadCard,
    ReaderLinkError,
    Reading,
    Status,
    error_answer,
    ok_answer,
    parse_request,
    reading_answer,
)

log = logging.getLogger("acqsim.reader")

#: ``read`` with ``"pin": "wrong"``: the cardholder mistypes the first digit (a Visa PVV covers the first 4).
_WRONG_DIGIT: Final = {str(d): str((d + 1) % 10) for d in range(10)}


def wrong_pin(pin: str) -> str:
    return _WRONG_DIGIT[pin[0]] + pin[1:]


def _key_id(reader: DukptReader) -> str:
    """The reader's KSN without its counter: TDES, the initial KSN (counter bits 0); AES, the initial key id."""
    initial = reader.ksn(0)
    return (initial if reader.scheme is DukptScheme.TDES else initial[:AES_KEY_ID_LEN]).hex().upper()


class ReaderDevice:
    def __init__(self, cards: Mapping[str, CardFixture]) -> None:
        self._cards = dict(cards)
        self._reader: DukptReader | None = None

    def answer(self, payload: bytes) -> bytes:
        """The answer frame to one request frame: never raises for what a peer sends."""
        try:
            request = parse_request(payload)
            match request:
                case ReadCard():
                    return reading_answer(self._read(request))
                case Status():
                    return self._status()
                case LoadKeys():
                    return self._load(request)
        except ReaderLinkError as exc:
            log.info("reader: request refused: %s", exc)
            return error_answer(exc)

    def _status(self) -> bytes:
        reader = self._reader
        if reader is None:
            return ok_answer(loaded=False, scheme=None, key_id=None, counter=0)
        return ok_answer(loaded=True, scheme=reader.scheme.value, key_id=_key_id(reader), counter=reader.counter)

    def _load(self, request: LoadKeys) -> bytes:
        scheme = DukptScheme(request.scheme)
        initial_ksn = request.initial_ksn if scheme is DukptScheme.TDES else request.initial_ksn + bytes(4)
        self._reader = DukptReader(scheme=scheme, initial_key=request.initial_key, initial_ksn=initial_ksn)
        key_id = _key_id(self._reader)
        log.info("reader: keys loaded (%s DUKPT, key id %s)", scheme.value, key_id)
        return ok_answer(key_id=key_id)

    def _read(self, request: ReadCard) -> Reading:
        if self._reader is None:
            raise ReaderLinkError(LinkError.NOT_LOADED, "no keys injected: run acqsim reader inject")
        card = self._cards.get(request.card)
        if card is None:
            raise ReaderLinkError(LinkError.UNKNOWN_CARD, "no such TEST card in the reader's slot")
        pin = {"keyed": card.pin, "wrong": wrong_pin(card.pin), "none": None}[request.pin]
        try:
            output = self._reader.encrypt(pan=card.pan, track2=card.track2, pin=pin)
        except ReaderExhausted as exc:
            raise ReaderLinkError(LinkError.EXHAUSTED, str(exc)) from None
        except ReaderError as exc:
            raise ReaderLinkError(LinkError.MALFORMED, str(exc)) from None
        return Reading(
            scheme=self._reader.scheme.value, ksn=output.ksn, pin_block=output.pin_block, track=output.track_data
        )
