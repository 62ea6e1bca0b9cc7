"""The terminal's message rules, sans-IO: build each request of PROTOCOL.md §1 and check each answer.

``TerminalSession`` owns a :class:`terminal.state.TerminalState` and the clear TMK (TEST material from the
configuration). Every financial request stores its reversal *before* it is handed out for sending; a trusted
answer clears it; ``reversal_due()`` hands out the pending reversal, which goes before any other request.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Final, NamedTuple

from acqkit.config import CardFixture
from terminal.chipcard import Completion
from terminal.chipflow import CardRead, ReadMode, reversal_icc, script_advice_icc
from terminal.reader import ReaderOutput
from terminal.state import MAX_REVERSAL_TRIES, BatchTxn, PendingReversal, TerminalState
from terminal.template import RequestTemplate
from wire.codec import decode_pos_body, encode_pos_body, encode_pos_body_with_mac, pos_body_mac, pos_mac_block
from wire.constants import (
    CURRENCY_CNY,
    ENTRY_SWIPE_NO_PIN,
    ENTRY_SWIPE_WITH_PIN,
    PIN_CAPTURE_6,
    REVERSAL_DONE_CODES,
    SECURITY_CONTROL_DUKPT,
    SECURITY_CONTROL_FORMAT0_TDES,
    SECURITY_CONTROL_FORMAT0_TDES_TDK,
    ConditionCode,
    Mti,
    NetworkCode,
    ProcessingCode,
    ResponseCode,
    ReversalReason,
    TxnType,
)
from wire.dukpt import SCHEME_AES, DukptTrackData
from wire.errors import WireError
from wire.field59 import ENTRY_QR, QR_PENDING, Field59
from wire.fields import BatchUploadDetails, CardTotals, Field60, Field61, SettlementTotals, SignOnKeys, UploadDetail
from wire.header import PROCESSING_SIGN_ON_AGAIN, PosHeader
from wire.paycrypto import EcbKey, decrypt_key_under, encrypt_pin_block, key_check_value, mac_cup_ecb
from wire.posframe import PosFrame
from wire.specs import POS_TRACK_FIELDS as TRACK_FIELDS
from wire.tpdu import DEFAULT_ROUTE, TERMINAL_SRC, Tpdu
from wire.trackcrypt import encrypt_track_field

KCV_LEN: Final = 4
#: Working keys a session keeps unwrapped: one sign-on's PIK and MAK (and, briefly, the previous pair's).
_MAX_CACHED_KEYS: Final = 4
#: Request templates a session keeps (one per kind, card, amount and PIN under the current keys and batch):
#: a load terminal needs one or a few; a terminal that goes through more cards starts afresh when full.
MAX_TEMPLATES: Final = 16

#: kind → (MTI, processing code, condition code, 60.1, PIN entered)
FINANCIAL: Final[dict[str, tuple[str, str, str, str, bool]]] = {
    "balance": (Mti.FINANCIAL_REQUEST, ProcessingCode.BALANCE, ConditionCode.NORMAL, TxnType.BALANCE, True),
    "purchase": (Mti.FINANCIAL_REQUEST, ProcessingCode.PURCHASE, ConditionCode.NORMAL, TxnType.PURCHASE, True),
    "void": (Mti.FINANCIAL_REQUEST, ProcessingCode.VOID, ConditionCode.NORMAL, TxnType.VOID, False),
    "refund": (Mti.ADVICE, ProcessingCode.VOID, ConditionCode.NORMAL, TxnType.REFUND, False),
    "preauth": (Mti.AUTH_REQUEST, ProcessingCode.PREAUTH, ConditionCode.PREAUTH, TxnType.PREAUTH, True),
    "preauth_cancel": (Mti.AUTH_REQUEST, ProcessingCode.VOID, ConditionCode.PREAUTH, TxnType.PREAUTH_CANCEL, False),
    "preauth_completion": (
        Mti.FINANCIAL_REQUEST,
        ProcessingCode.PURCHASE,
        ConditionCode.PREAUTH,
        TxnType.PREAUTH_COMPLETION,
        True,
    ),
    "preauth_completion_void": (
        Mti.FINANCIAL_REQUEST,
        ProcessingCode.VOID,
        ConditionCode.PREAUTH,
        TxnType.PREAUTH_COMPLETION_VOID,
        False,
    ),
    "transfer": (Mti.FINANCIAL_REQUEST, ProcessingCode.TRANSFER, ConditionCode.NORMAL, TxnType.TRANSFER, True),
}
#: QR kind → (MTI, processing code, 60.1): 被扫 sale, void, refund (PROTOCOL.md §9) and acqsim's 主扫 order,
#: query and cancel (docs/qr.md). No card data travels: 22 = 032, the QR data in field 59.
QR_FINANCIAL: Final[dict[str, tuple[str, str, str]]] = {
    "qr_sale": (Mti.FINANCIAL_REQUEST, ProcessingCode.PURCHASE, TxnType.PURCHASE),
    "qr_void": (Mti.FINANCIAL_REQUEST, ProcessingCode.VOID, TxnType.VOID),
    "qr_refund": (Mti.ADVICE, ProcessingCode.VOID, TxnType.REFUND),
    "qr_order": (Mti.FINANCIAL_REQUEST, ProcessingCode.PURCHASE, TxnType.QR_ORDER),
    "qr_query": (Mti.FINANCIAL_REQUEST, ProcessingCode.BALANCE, TxnType.QR_QUERY),
    "qr_cancel": (Mti.FINANCIAL_REQUEST, ProcessingCode.VOID, TxnType.QR_ORDER_CANCEL),
}
#: QR kinds that move money: their reversal is stored before they are sent.
QR_MONEY_KINDS: Final = ("qr_sale", "qr_void", "qr_refund")
DEBIT_KINDS: Final = ("purchase", "preauth_completion", "qr_sale")
CREDIT_KINDS: Final = ("void", "refund", "preauth_completion_void", "qr_void", "qr_refund")
#: Kinds whose approval posts money (they are remembered in the batch).
BATCH_KINDS: Final = DEBIT_KINDS + CREDIT_KINDS + ("preauth", "preauth_cancel", "transfer")


def _voucher(fields: dict[str, str]) -> str:
    """The QR payment voucher (59 ``A4``) of an answer, or ``""``."""
    if "59" not in fields:
        return ""
    try:
        return Field59.parse(fields["59"]).voucher or ""
    except WireError:
        return ""


class _Templated(NamedTuple):
    """A session's cached request template and the reversal fields its requests store (``None``: no reversal)."""

    request: RequestTemplate
    reversal: dict[str, str] | None


class TerminalError(Exception):
    """The terminal cannot do what was asked (not signed on, bad keys, unknown original…)."""


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    kind: str
    response_code: str
    fields: dict[str, str]
    trusted: bool  # the answer's MAC verified (or the message carries none by design)
    sign_on_again: bool = False
    #: Chip: the card refused at its second GENERATE AC after the host approved (the terminal reversed it).
    card_declined: bool = False
    #: Chip: the issuer's ARPC verified (True), did not (False), or the answer carried none (None).
    issuer_authenticated: bool | None = None
    #: Chip: issuer scripts ran (their results went in a 0620 advice).
    scripts_ran: bool = False

    @property
    def approved(self) -> bool:
        return self.response_code == ResponseCode.APPROVED and self.trusted and not self.card_declined


@dataclasses.dataclass(frozen=True, slots=True)
class Original:
    """What a void/refund/completion needs of the transaction it names."""

    stan: str
    rrn: str = ""
    auth_code: str = ""
    local_date: str = ""
    batch: str = ""


def parse_answer(payload: bytes) -> tuple[PosFrame, dict[str, str]]:
    """An answer payload's frame and decoded fields; raises :class:`TerminalError` if it does not decode."""
    try:
        frame = PosFrame.parse(payload)
        return frame, decode_pos_body(frame.body)
    except WireError as exc:
        raise TerminalError(f"answer does not decode: {exc}") from None


class TerminalSession:
    def __init__(
        self,
        state: TerminalState,
        tmk: bytes,
        *,
        app_type: str = "61",
        route: str = DEFAULT_ROUTE,
        clock: Callable[[], dt.datetime] = dt.datetime.now,
        keep_batch: bool = True,
        templates: bool = True,
    ) -> None:
        self.state = state
        self._tmk = tmk
        #: Working keys unwrapped once per sign-on, as reusable ciphers: under-TMK hex → cipher.
        self._ciphers: dict[str, EcbKey] = {}
        #: ``False``: approvals are not remembered for settlement (load terminals: an hour of purchases would
        #: otherwise fill memory); their settlement then reports empty totals.
        self.keep_batch = keep_batch
        self.header = PosHeader(app_type=app_type)
        #: The chip request in flight (22, 23, 55) and the last reversal stored, for what follows the answer.
        self._chip_request: tuple[str, str, str] | None = None
        self._last_reversal: dict[str, str] | None = None
        self.tpdu = Tpdu(dst=route, src=TERMINAL_SRC)
        #: TPDU ‖ header: the same for every request of this terminal, so written once.
        self._frame_prefix = PosFrame(tpdu=self.tpdu, header=self.header, body=b"").to_bytes()
        self.clock = clock
        #: Card financial requests encoded once and patched per request (``terminal/template.py``), by
        #: everything their bytes depend on but STAN, time, date and MAC; ``None``: every request in full.
        #: A template's value also holds the reversal its requests store (STAN and 61 aside); ``None`` when the
        #: body's layout allowed no template.
        self._templates: dict[tuple[object, ...], _Templated | None] | None = {} if templates else None

    # --- keys ------------------------------------------------------------------------------------------

    def _key(self, under_tmk: str | None) -> EcbKey:
        """The working key ``under_tmk``, unwrapped under the TMK the first time it is used (not per message)."""
        if under_tmk is None:
            raise TerminalError("terminal is not signed on: no working keys")
        cipher = self._ciphers.get(under_tmk)
        if cipher is None:
            if len(self._ciphers) >= _MAX_CACHED_KEYS:  # keys of an earlier sign-on: drop them
                self._ciphers.clear()
            cipher = self._ciphers[under_tmk] = EcbKey(decrypt_key_under(self._tmk, bytes.fromhex(under_tmk)))
        return cipher

    @property
    def _mak(self) -> EcbKey:
        return self._key(self.state.mak_under_tmk)

    @property
    def _pik(self) -> EcbKey:
        return self._key(self.state.pik_under_tmk)

    def _protect_tracks(self, fields: dict[str, str]) -> dict[str, str]:
        """With a TDK (a 004 sign-on asked for it), the tracks encrypted under it and 53 saying so (PROTOCOL.md §8);
        without one, ``fields`` as they are. Encrypted at each send, so a reversal goes under the current TDK."""
        if self.state.tdk_under_tmk is None or not any(key in fields for key in TRACK_FIELDS):
            return fields
        tdk = decrypt_key_under(self._tmk, bytes.fromhex(self.state.tdk_under_tmk))
        protected = {
            key: encrypt_track_field(tdk, value) if key in TRACK_FIELDS else value for key, value in fields.items()
        }
        protected["53"] = SECURITY_CONTROL_FORMAT0_TDES_TDK
        return protected

    def mac(self, block: bytes) -> bytes:
        """The CUP ECB MAC of ``block`` under this terminal's working MAK (the key never leaves the session)."""
        return mac_cup_ecb(self._mak, block)

    # --- frames ----------------------------------------------------------------------------------------

    def _frame(self, fields: dict[str, str], *, mac: bool) -> bytes:
        body = (
            encode_pos_body_with_mac(fields, lambda block: mac_cup_ecb(self._mak, block))
            if mac
            else (encode_pos_body(fields))
        )
        return self._frame_prefix + body

    def _base(self, mti: str, stan: str) -> dict[str, str]:
        now = self.clock()
        return {
            "t": mti,
            "11": stan,
            "12": f"{now.hour:02d}{now.minute:02d}{now.second:02d}",
            "13": f"{now.month:02d}{now.day:02d}",
            "41": self.state.terminal_id,
            "42": self.state.merchant_id,
        }

    def sign_on(self, *, with_tdk: bool = False) -> bytes:
        """0800 sign-on: 60.3 003 (PIK and MAK) or, ``with_tdk``, 004 (also the track data key)."""
        fields = self._base(Mti.NETWORK_REQUEST, self.state.next_stan())
        code = NetworkCode.SIGN_ON_WITH_TDK if with_tdk else NetworkCode.SIGN_ON_DOUBLE_KEYS
        fields["60"] = Field60(txn_type=TxnType.NETWORK, batch=self.state.batch, network_code=code).encode()
        fields["63"] = "001"  # operator number
        return self._frame(fields, mac=False)

    def network(self, code: NetworkCode) -> bytes:
        fields = self._base(Mti.NETWORK_ADVICE, self.state.next_stan())
        fields["60"] = Field60(txn_type=TxnType.NETWORK, batch=self.state.batch, network_code=code).encode()
        return self._frame(fields, mac=False)

    def financial(
        self,
        kind: str,
        card: CardFixture,
        *,
        amount: int = 0,
        pin: str | None = None,
        original: Original | None = None,
        target_pan: str | None = None,
        read: CardRead | None = None,
    ) -> bytes:
        """Build a financial request; its reversal is stored first (except balance inquiries). ``read`` says
        how the card was read (chip: 22 = 05x/07x with 23 and 55; fallback 80x; 60.4/60.5), default a swipe."""
        mti, processing, condition, txn_type, wants_pin = FINANCIAL[kind]
        state = self.state
        if not state.signed_on:
            raise TerminalError("terminal is not signed on")
        templates = self._templates
        template_key: tuple[object, ...] | None = None
        plain = read is None and original is None and not target_pan and state.tdk_under_tmk is None
        if templates is not None and plain:
            template_key = (kind, card, amount, pin, state.batch, state.pik_under_tmk, state.mak_under_tmk)
            templated = templates.get(template_key)
            if templated is not None:
                return self._from_template(templated)
            if template_key in templates:  # its layout allows no template
                template_key = None
        fields = self._base(mti, state.next_stan())
        fields.update(
            {"2": card.pan, "3": processing, "14": card.expiry, "25": condition, "35": card.track2, "49": CURRENCY_CNY}
        )
        if kind != "balance":
            fields["4"] = f"{amount:012d}"
        entered = wants_pin and pin is not None
        fields["22"] = ENTRY_SWIPE_WITH_PIN if entered else ENTRY_SWIPE_NO_PIN
        if entered:
            assert pin is not None
            fields.update(
                {
                    "26": PIN_CAPTURE_6,
                    "52": encrypt_pin_block(self._pik, pin, card.pan).hex().upper(),
                    "53": SECURITY_CONTROL_FORMAT0_TDES,
                }
            )
        if original is not None:
            fields["61"] = Field61(
                batch=original.batch or self.state.batch,
                stan=original.stan,
                date=original.local_date or None if kind == "refund" else None,
            ).encode()
            if original.rrn:
                fields["37"] = original.rrn
            if original.auth_code:
                fields["38"] = original.auth_code
        if target_pan:
            fields["48"] = target_pan
        fields["60"] = Field60(txn_type=txn_type, batch=self.state.batch).encode()
        self._chip_request = None
        if read is not None and read.mode is not ReadMode.SWIPE:
            fields["22"] = read.mode.value + fields["22"][2]
            fields["60"] = Field60(txn_type=txn_type, batch=self.state.batch, extra=read.field_60_extra).encode()
        if read is not None and read.is_chip:
            fields["23"] = read.psn.zfill(3)
            fields["55"] = read.icc.hex().upper()
            self._chip_request = (fields["22"], fields["23"], fields["55"])
        if kind != "balance":
            self._store_reversal(fields, read)  # with the clear track: encrypted afresh at each try
        frame = self._frame(self._protect_tracks(fields), mac=True)
        if template_key is not None and templates is not None:
            if len(templates) >= MAX_TEMPLATES:
                templates.clear()
            template = RequestTemplate.of(fields, frame[len(self._frame_prefix) :])
            reversal = dict(self._last_reversal) if kind != "balance" and self._last_reversal is not None else None
            templates[template_key] = None if template is None else _Templated(template, reversal)
        return frame

    def _from_template(self, templated: _Templated) -> bytes:
        """:meth:`financial` again for what the template was made of: a new STAN, time, date and MAC, and the
        reversal stored first (its STAN and 61 the new request's), as a full build does."""
        stan = self.state.next_stan()
        self._chip_request = None
        if templated.reversal is not None:
            reversal = dict(templated.reversal)
            reversal["11"] = stan
            reversal["61"] = Field61(batch=self.state.batch, stan=stan).encode()
            self.state.pending_reversal = PendingReversal(fields=reversal)
            self._last_reversal = dict(reversal)
        return self._frame_prefix + templated.request.render(stan, self.clock(), self.mac)

    def qr(self, kind: str, *, amount: int = 0, qr_data: Field59, original: Original | None = None) -> bytes:
        """Build a QR request (``QR_FINANCIAL``); the reversal of a money-moving one is stored first."""
        mti, processing, txn_type = QR_FINANCIAL[kind]
        if not self.state.signed_on:
            raise TerminalError("terminal is not signed on")
        self._chip_request = None  # no card was read
        fields = self._base(mti, self.state.next_stan())
        fields.update({"3": processing, "22": ENTRY_QR, "25": ConditionCode.NORMAL, "49": CURRENCY_CNY})
        if amount:
            fields["4"] = f"{amount:012d}"
        fields["59"] = qr_data.encode()
        if original is not None:
            fields["61"] = Field61(
                batch=original.batch or self.state.batch,
                stan=original.stan,
                date=original.local_date or None if kind == "qr_refund" else None,
            ).encode()
            if original.rrn:
                fields["37"] = original.rrn
        fields["60"] = Field60(txn_type=txn_type, batch=self.state.batch).encode()
        if kind in QR_MONEY_KINDS:
            self._store_reversal(fields)
        return self._frame(fields, mac=True)

    def qr_settled(self, sale: Outcome, final: Outcome) -> None:
        """A pending 被扫 sale (``09``) ended: ``final`` is the query's answer. Paid: the sale joins the batch
        and its reversal is dropped; refused for good: nothing was charged, the reversal is dropped too. (Still
        pending: the caller reverses.)"""
        if final.response_code == QR_PENDING or not final.trusted:
            return
        if sale.kind == "qr_sale":
            self.state.pending_reversal = None
        if final.approved:
            fields = {**sale.fields, "39": final.response_code, "59": final.fields.get("59", sale.fields.get("59", ""))}
            self._remember("qr_sale", fields)

    def dukpt_financial(self, kind: str, reader: ReaderOutput, *, scheme: int, amount: int) -> bytes:
        """An MPOS request built by the phone from what the card reader returned: no PAN, track or clear PIN —
        52 = the PIN block under the DUKPT PIN key, 53 = :data:`SECURITY_CONTROL_DUKPT`, 62 = scheme ‖ KSN ‖
        track 2 under the DUKPT data key (docs/chip.md). Its reversal is stored first, as for any request."""
        mti, processing, condition, txn_type, _ = FINANCIAL[kind]
        if not self.state.signed_on:
            raise TerminalError("terminal is not signed on")
        fields = self._base(mti, self.state.next_stan())
        fields |= {"3": processing, "4": f"{amount:012d}", "25": condition, "49": CURRENCY_CNY}
        fields["22"] = ENTRY_SWIPE_WITH_PIN if reader.pin_block is not None else ENTRY_SWIPE_NO_PIN
        aes_pin = reader.pin_block if scheme == SCHEME_AES else None  # format 4, 16 bytes: it travels in 62
        if reader.pin_block is not None:
            fields["26"] = PIN_CAPTURE_6
            if aes_pin is None:
                fields["52"] = reader.pin_block.hex().upper()
        fields["53"] = SECURITY_CONTROL_DUKPT
        fields["62"] = DukptTrackData(
            scheme=scheme, ksn=reader.ksn, track_ciphertext=reader.track_data, pin_block=aes_pin
        ).encode()
        fields["60"] = Field60(txn_type=txn_type, batch=self.state.batch).encode()
        self._chip_request = None
        self._store_reversal(fields)
        return self._frame(fields, mac=True)

    def _store_reversal(self, request: dict[str, str], read: CardRead | None = None) -> None:
        keep: tuple[str, ...] = ("2", "3", "4", "11", "14", "22", "23", "25", "35", "41", "42", "49", "59", "60")
        if request.get("53") == SECURITY_CONTROL_DUKPT:
            keep += ("53", "62")  # MPOS: the card is named only by the reader's KSN and encrypted track
        fields = {k: request[k] for k in keep if k in request}
        fields["t"] = Mti.REVERSAL
        fields["39"] = ReversalReason.NO_ANSWER.value
        fields["61"] = Field61(batch=self.state.batch, stan=request["11"]).encode()
        if read is not None and read.is_chip:
            fields["55"] = reversal_icc(read.values).hex().upper()
        self.state.pending_reversal = PendingReversal(fields=fields)
        self._last_reversal = dict(fields)

    # --- chip: after the host's answer ------------------------------------------------------------------

    def card_declined(self, outcome: Outcome, read: CardRead, completion: Completion) -> None:
        """The host approved but the card said no at its second GENERATE AC (a wrong ARPC, or the card's own
        decision): undo the approval — drop it from the batch and queue its reversal, with the card's 55."""
        if self._last_reversal is None:
            raise TerminalError("no chip request to reverse")
        fields = dict(self._last_reversal)
        fields["39"] = ReversalReason.OTHER.value
        fields["55"] = reversal_icc(read.values, completion).hex().upper()
        self.state.pending_reversal = PendingReversal(fields=fields)
        stan = outcome.fields.get("11", "")
        self.state.batch_txns = [t for t in self.state.batch_txns if t.stan != stan]

    def script_advice(self, outcome: Outcome, read: CardRead, completion: Completion) -> bytes:
        """0620 / 951: the issuer scripts' results (DF31), naming the original transaction in 61."""
        if self._last_reversal is None:
            raise TerminalError("no chip request to advise about")
        request = self._last_reversal
        fields = self._base(Mti.SCRIPT_ADVICE, self.state.next_stan())
        fields |= {n: request[n] for n in ("2", "3", "4", "22", "23", "49") if n in request}
        fields["55"] = script_advice_icc(read.values, completion).hex().upper()
        fields["60"] = Field60(
            txn_type=Field60.parse(request["60"]).txn_type,
            batch=self.state.batch,
            network_code=NetworkCode.SCRIPT_RESULT_ADVICE,
        ).encode()
        original_stan = Field61.parse(request["61"]).stan
        fields["61"] = Field61(batch=self.state.batch, stan=original_stan, date=outcome.fields.get("13")).encode()
        self.state.pending_advices.append(fields)  # stored before it leaves: retried until acknowledged
        return self._frame(fields, mac=True)

    def advice_due(self) -> bytes | None:
        """The oldest unacknowledged 0620 advice again (same STAN: the host may have it already), or ``None``."""
        if not self.state.pending_advices:
            return None
        return self._frame(self.state.pending_advices[0], mac=True)

    def mark_reversal_reason(self, reason: ReversalReason) -> None:
        if self.state.pending_reversal is not None:
            self.state.pending_reversal.fields["39"] = reason.value

    def reversal_due(self) -> bytes | None:
        pending = self.state.pending_reversal
        if pending is None:
            return None
        pending.tries += 1
        return self._frame(self._protect_tracks(pending.fields), mac=True)

    def settlement(self) -> bytes:
        fields = self._base(Mti.SETTLEMENT, self.state.next_stan())
        fields["48"] = self.totals().encode()
        fields["49"] = CURRENCY_CNY
        fields["60"] = Field60(
            txn_type=TxnType.NETWORK, batch=self.state.batch, network_code=NetworkCode.SETTLEMENT
        ).encode()
        fields["63"] = "001"
        return self._frame(fields, mac=True)

    def batch_uploads(self) -> list[bytes]:
        """0320/201 frames with the batch's details (8 a frame), then the 0320/202 end of upload."""
        uploaded = [t for t in self.state.batch_txns if t.kind in DEBIT_KINDS + CREDIT_KINDS]
        details = [UploadDetail(stan=t.stan, pan=t.pan, amount=t.amount) for t in uploaded if not t.icc]
        chip_frames = [self._chip_upload(t) for t in uploaded if t.icc]
        frames = []
        for start in range(0, len(details), 8):
            fields = self._base(Mti.BATCH_UPLOAD, self.state.next_stan())
            fields["48"] = BatchUploadDetails(details=tuple(details[start : start + 8])).encode()
            fields["60"] = Field60(
                txn_type=TxnType.NETWORK, batch=self.state.batch, network_code=NetworkCode.BATCH_UPLOAD
            ).encode()
            frames.append(self._frame(fields, mac=True))
        frames += chip_frames
        end = self._base(Mti.BATCH_UPLOAD, self.state.next_stan())
        end["48"] = f"{len(details) + len(chip_frames):04d}"
        end["60"] = Field60(
            txn_type=TxnType.NETWORK, batch=self.state.batch, network_code=NetworkCode.END_OF_BATCH_UPLOAD
        ).encode()
        frames.append(self._frame(end, mac=True))
        return frames

    def _chip_upload(self, txn: BatchTxn) -> bytes:
        """0320 / 205: one chip transaction with its 55, after an unbalanced settlement (PROTOCOL.md §7)."""
        fields = {
            "t": Mti.BATCH_UPLOAD,
            "2": txn.pan,
            "4": f"{txn.amount:012d}",
            "11": txn.stan,
            "22": txn.entry,
            "23": txn.psn,
            "41": self.state.terminal_id,
            "42": self.state.merchant_id,
            "55": txn.icc,
            "60": Field60(
                txn_type=TxnType.NETWORK, batch=self.state.batch, network_code=NetworkCode.CHIP_BATCH_UPLOAD_UNBALANCED
            ).encode(),
        }
        return self._frame(fields, mac=True)

    def totals(self) -> SettlementTotals:
        debits = [t.amount for t in self.state.batch_txns if t.kind in DEBIT_KINDS]
        credits = [t.amount for t in self.state.batch_txns if t.kind in CREDIT_KINDS]
        return SettlementTotals(
            domestic=CardTotals(
                debit_amount=sum(debits), debit_count=len(debits), credit_amount=sum(credits), credit_count=len(credits)
            )
        )

    def close_batch(self) -> None:
        self.state.batch_txns.clear()
        self.state.batch = f"{int(self.state.batch) % 999_999 + 1:06d}"

    # --- answers ---------------------------------------------------------------------------------------

    def receive(self, kind: str, payload: bytes) -> Outcome:
        """Check an answer: decode, verify its MAC, apply what it says to the state."""
        frame, fields = parse_answer(payload)
        return self.receive_decoded(kind, frame, fields)

    def receive_decoded(self, kind: str, frame: PosFrame, fields: dict[str, str]) -> Outcome:
        """:meth:`receive` for an answer already decoded by :func:`parse_answer` (a load generator decodes
        first to learn which terminal an answer is for)."""
        sign_on_again = frame.header.processing_request == PROCESSING_SIGN_ON_AGAIN
        if kind == "sign_on":
            return self._signed_on(fields)
        trusted = True
        mac = pos_body_mac(frame.body)
        if mac is not None and self.state.mak_under_tmk is not None:
            trusted = mac_cup_ecb(self._mak, pos_mac_block(frame.body)) == mac
        elif kind in FINANCIAL or kind in QR_FINANCIAL or kind in ("reversal", "settlement"):
            trusted = fields.get("39") != ResponseCode.APPROVED  # an approval must carry a MAC
        if sign_on_again:
            self.state.signed_on = False
        outcome = Outcome(
            kind=kind, response_code=fields.get("39", ""), fields=fields, trusted=trusted, sign_on_again=sign_on_again
        )
        if (kind in FINANCIAL and kind != "balance") or kind in QR_MONEY_KINDS:
            if not trusted:
                self.mark_reversal_reason(ReversalReason.ANSWER_MAC_FAILED)
            elif outcome.response_code != QR_PENDING or kind not in QR_MONEY_KINDS:
                self.state.pending_reversal = None  # a pending QR sale keeps it until the sale ends
        if kind == "reversal" and trusted and outcome.response_code in REVERSAL_DONE_CODES:
            self.state.pending_reversal = None
        if kind == "script_advice" and trusted:  # any trusted answer acknowledges it (an advice is not refused twice)
            stan = fields.get("11")
            self.state.pending_advices = [a for a in self.state.pending_advices if a.get("11") != stan]
        if outcome.approved and kind in BATCH_KINDS and self.keep_batch:
            self._remember(kind, fields)
        return outcome

    def _remember(self, kind: str, fields: dict[str, str]) -> None:
        entry, psn, icc = self._chip_request or ("", "", "")
        self.state.batch_txns.append(
            BatchTxn(
                kind=kind,
                stan=fields.get("11", ""),
                pan=fields.get("2", ""),
                amount=int(fields.get("4", "0")),
                rrn=fields.get("37", ""),
                auth_code=fields.get("38", ""),
                local_date=fields.get("13", ""),
                voucher=_voucher(fields),
                entry=entry,
                psn=psn,
                icc=icc,
            )
        )

    def reversal_failed(self) -> None:
        pending = self.state.pending_reversal
        if pending is not None and pending.tries >= MAX_REVERSAL_TRIES:
            self.state.kept_reversals.append(pending.fields)
            self.state.pending_reversal = None

    def _signed_on(self, fields: dict[str, str]) -> Outcome:
        code = fields.get("39", "")
        if code != ResponseCode.APPROVED:
            return Outcome(kind="sign_on", response_code=code, fields=fields, trusted=True)
        keys = SignOnKeys.parse(fields.get("62", ""))
        checks = [(keys.pik_under_tmk, keys.pik_kcv), (keys.mak_under_tmk, keys.mak_kcv)]
        if keys.tdk_under_tmk is not None and keys.tdk_kcv is not None:
            checks.append((keys.tdk_under_tmk, keys.tdk_kcv))
        for under, kcv in checks:
            clear = decrypt_key_under(self._tmk, bytes.fromhex(under))
            if key_check_value(clear, KCV_LEN).hex().upper() != kcv.upper():
                raise TerminalError("a working key's check value does not match: sign on again")
        self.state.pik_under_tmk, self.state.mak_under_tmk = keys.pik_under_tmk, keys.mak_under_tmk
        self.state.tdk_under_tmk = keys.tdk_under_tmk
        self.state.batch = Field60.parse(fields.get("60", "00000001")).batch
        self.state.signed_on = True
        return Outcome(kind="sign_on", response_code=code, fields=fields, trusted=True)
