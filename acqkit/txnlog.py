"""Structured logs: ``--log-format json`` writes every log record as one JSON object per line, and each service
logs one ``acqsim.txn`` record per transaction it handles (the HSM: per command), carrying the transaction id
that ties a purchase's lines together across the NAC, the front-end, the HSM and the ledger.

The id is the trace correlation id (:func:`wire.trace.correlation_id`: ``T<terminal>-<STAN>``). Card data
appears only masked (first 6, last 4: :func:`wire.masking.mask_pan`); no PIN block, key, MAC or track.

A line (``docs/logging.md`` lists the fields)::

    {"ts": "2026-12-04T07:12:03.512+00:00", "level": "INFO", "logger": "acqsim.txn", "service": "ledger",
     "txn": "T10000001-000006", "mti": "0200", "processing_code": "000000", "amount": "000000000100",
     "pan": "620000******0003", "code": "00", "msg": "ledger T10000001-000006 0200 -> 00"}
"""

from __future__ import annotations

import datetime
import json
import logging
import sys
from collections.abc import Mapping
from typing import Final, Literal

from wire.codec import decode_pos_body
from wire.errors import WireError
from wire.masking import mask_pan
from wire.posframe import PosFrame
from wire.trace import correlation_id

#: The logger of the one-per-transaction records.
TXN_LOGGER: Final = logging.getLogger("acqsim.txn")
LOG_FORMATS: Final = ("text", "json")
LogFormat = Literal["text", "json"]
TEXT_FORMAT: Final = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
#: The attribute of a log record that holds a transaction record's fields.
_FIELDS_ATTR: Final = "acqsim_txn"


class JsonLineFormatter(logging.Formatter):
    """One JSON object per record: ts (UTC, ms), level, logger, msg, the transaction fields, and any
    exception's traceback as ``exc``."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "ts": datetime.datetime.fromtimestamp(record.created, tz=datetime.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        line.update(getattr(record, _FIELDS_ATTR, {}))
        line["msg"] = record.getMessage()
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def configure_logging(verbosity: int, log_format: LogFormat = "text") -> None:
    """Root logging to stderr: WARNING, INFO with -v, DEBUG with -vv. In JSON the transaction records are
    always on (they are what the format is for); in text, from -v."""
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonLineFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level, handlers=[handler])  # a no-op where logging is set up already (tests)
    TXN_LOGGER.setLevel(min(level, logging.INFO) if log_format == "json" else logging.NOTSET)


def enabled() -> bool:
    """Whether transaction records are written (so a service decodes nothing for them when they are not)."""
    return TXN_LOGGER.isEnabledFor(logging.INFO)


def log_transaction(service: str, txn: str | None, **fields: str | None) -> None:
    """One transaction record of ``service``; ``txn`` and ``fields`` that are ``None`` are left out."""
    if not enabled():
        return
    shown = {name: value for name, value in fields.items() if value is not None}
    what = shown.get("mti") or shown.get("command") or shown.get("kind")
    summary = " ".join(v for v in (what, shown.get("code")) if v)
    ids = {"service": service} | ({"txn": txn} if txn is not None else {})
    TXN_LOGGER.info("%s %s %s", service, txn or "-", summary, extra={_FIELDS_ATTR: ids | shown})


def iso_summary(fields: Mapping[str, str]) -> dict[str, str | None]:
    """What a transaction record shows of an ISO message: MTI, 3, 4, the masked PAN (2 or track 2), 39."""
    pan = fields.get("2") or fields.get("35", "").split("=")[0].split("D")[0]
    return {
        "mti": fields.get("t"),
        "processing_code": fields.get("3"),
        "amount": fields.get("4"),
        "pan": mask_pan(pan) if pan else None,
        "code": fields.get("39"),
    }


def iso_txn(fields: Mapping[str, str]) -> str | None:
    """The transaction id of an ISO message (``None`` without a STAN)."""
    stan = fields.get("11", "")
    return correlation_id(fields.get("41", "?"), stan) if stan else None


def log_pos_answer(service: str, payload: bytes) -> None:
    """The transaction record of a POS answer frame (request fields echoed: 2, 3, 4, 11, 41; 39)."""
    if not enabled():
        return
    try:
        fields = decode_pos_body(PosFrame.parse(payload).body)
    except WireError:
        return  # not a message: nothing to log as a transaction
    txn = iso_txn(fields)
    if txn is not None:
        log_transaction(service, txn, **{**iso_summary(fields), "mti": request_mti(fields.get("t", ""))})


def link_txn(terminal_id: str | None, stan: str | None) -> str | None:
    """The transaction id of a TLV-link request that names the terminal (``TI``) and its STAN (``ST``): the
    same id the terminal's ISO request has at the NAC and the front-end; ``None`` when either is missing."""
    return correlation_id(terminal_id, stan) if terminal_id and stan else None


def request_mti(mti: str) -> str:
    """The request MTI an answer's MTI answers (0210 → 0200): every hop logs a transaction by its request."""
    if len(mti) == 4 and mti[2].isdigit() and int(mti[2]) % 2 == 1:
        return mti[:2] + str(int(mti[2]) - 1) + mti[3]
    return mti
