"""The wallet host's rules, sans-IO: ``decide(message, now)`` → the answer and the records it changes.

Nothing here does I/O or reads a clock. The shell commits a decision's records in one store transaction and
only then applies them to the book and sends the answer, one decision at a time; so a payment code's use,
the money it moves and the answer a retry will get are durable together or not at all.

Merchant-side requests carry a key (``TI ST DT`` and the kind): a repeated key gets the first answer back
and changes nothing. Money moves between two accounts of the book (the consumer's and the merchant's), so
the book's total never changes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Final

from acqkit.numbers import new_number
from wallet.codes import (
    CODE_LIFETIME_S,
    MAX_ORDER_LIFETIME_S,
    NO_PASSWORD_LIMIT,
    ORDER_DIGITS,
    ORDER_LIFETIME_S,
    PENDING_LIFETIME_S,
    VOUCHER_DIGITS,
    new_code,
    password_matches,
)
from wallet.model import (
    MERCHANT_ACCOUNT_PREFIX,
    Account,
    Answered,
    Order,
    OrderState,
    Payment,
    PaymentCode,
    PaymentState,
    Record,
    SettlementBatch,
    WalletBook,
)
from wallet.settlement import SettlementError, batches_of, mark_batch, open_batches
from wire.constants import ResponseCode
from wire.errors import MessageDecodeError
from wire.field59 import PaymentCodeError, Wallet, wallet_of
from wire.tlvlink import LinkMessage, decode_message, encode_message
from wire.walletlink import EXPIRED, PENDING, USED, WALLET_LINK, Kind

#: The order QR's content: what the terminal draws and the wallet app reads (acqsim's own scheme).
QR_CONTENT_PREFIX: Final = "acqsim-qr:"
AUTH_CODE_DIGITS: Final = 6
_RC = ResponseCode
#: ``RC`` of a QURY answer, by state (anything else: 12, the payment or order is over without money moving).
PAYMENT_RESULTS: Final[dict[PaymentState, str]] = {
    PaymentState.PENDING: PENDING,
    PaymentState.PAID: _RC.APPROVED,
    PaymentState.DECLINED: _RC.INSUFFICIENT_FUNDS,
}
ORDER_RESULTS: Final[dict[OrderState, str]] = {
    OrderState.OPEN: PENDING,
    OrderState.PAID: _RC.APPROVED,
    OrderState.EXPIRED: EXPIRED,
}


@dataclasses.dataclass(frozen=True, slots=True)
class Decision:
    answer: LinkMessage
    records: tuple[Record, ...] = ()


def merchant_key(message: LinkMessage) -> str:
    """What names a merchant-side request: its kind and the terminal's TI ST DT."""
    return " ".join((message.kind, message["TI"], message["ST"], message["DT"]))


def _pay_key(message: LinkMessage) -> str:
    return " ".join((Kind.PAY, message["TI"], message["ST"], message["DT"]))


def _encoded(answer: LinkMessage) -> str:
    return encode_message(answer, WALLET_LINK).decode("ascii")


def _merchant_account(merchant_id: str) -> str:
    return MERCHANT_ACCOUNT_PREFIX + merchant_id


class WalletCore:
    def __init__(self, book: WalletBook, *, numbers: Callable[[int], str] = new_number) -> None:
        self.book = book
        self._numbers = numbers
        self._handlers: dict[str, Callable[[LinkMessage, float], Decision]] = {
            Kind.CODE: self._code,
            Kind.BALANCE: self._balance,
            Kind.PAY_ORDER: self._pay_order,
            Kind.CONFIRM: self._confirm,
            Kind.PAY: self._pay,
            Kind.QUERY: self._query,
            Kind.REVERSE: self._reverse,
            Kind.VOID: self._void,
            Kind.REFUND: self._refund,
            Kind.REVERSE_GIVE_BACK: self._reverse_give_back,
            Kind.ORDER: self._order,
            Kind.CANCEL: self._cancel,
            Kind.SETTLE_OPEN: self._settle_open,
            Kind.SETTLE_BATCH: self._settle_batch,
            Kind.SETTLE_MARK: self._settle_mark,
        }

    def apply(self, records: Sequence[Record]) -> None:
        """Take in a decision's records once they are durable."""
        self.book.apply(tuple(records))

    def decide(self, message: LinkMessage, now: float) -> Decision:
        """The answer to a request (already checked against the wallet link's spec), and what it changes."""
        handler = self._handlers[message.kind]
        if {"TI", "ST", "DT"} <= {tag for tag, _ in message.values}:
            key = merchant_key(message)
            first = self.book.answered.get(key)
            if first is not None:
                return Decision(decode_message(first.encode("ascii"), WALLET_LINK))
            decision = handler(message, now)
            remembered = Answered(key=key, answer=encode_message(decision.answer, WALLET_LINK).decode("ascii"))
            return Decision(decision.answer, (*decision.records, remembered))
        return handler(message, now)

    # -- money ------------------------------------------------------------------------------------------------

    def _move(self, debit: str, credit: str, amount: int) -> tuple[Account, Account]:
        """The two accounts after ``amount`` moves from ``debit`` to ``credit`` (a merchant account is opened on
        first use)."""
        source = self.book.accounts[debit]
        target = self.book.accounts.get(credit)
        if target is None:
            target = Account(account_id=credit, wallet=source.wallet, balance=0)
        return (
            dataclasses.replace(source, balance=source.balance - amount),
            dataclasses.replace(target, balance=target.balance + amount),
        )

    def _charge(self, payment: Payment) -> tuple[Record, ...]:
        """The records of a payment going through: consumer debited, merchant credited, payment PAID."""
        consumer, merchant = self._move(payment.account_id, _merchant_account(payment.merchant_id), payment.amount)
        return consumer, merchant, dataclasses.replace(payment, state=PaymentState.PAID)

    def _give_back(self, payment: Payment, amount: int, state: PaymentState) -> tuple[Record, ...]:
        merchant, consumer = self._move(_merchant_account(payment.merchant_id), payment.account_id, amount)
        refunded = payment.refunded + amount if state is PaymentState.PAID else payment.refunded
        return merchant, consumer, dataclasses.replace(payment, state=state, refunded=refunded)

    def _auth_code(self) -> str:
        return self._numbers(AUTH_CODE_DIGITS)

    # -- consumer side ----------------------------------------------------------------------------------------

    def _account(self, message: LinkMessage) -> Account | None:
        return self.book.accounts.get(message["CA"])

    def _code(self, message: LinkMessage, now: float) -> Decision:
        account = self._account(message)
        if account is None or account.account_id.startswith(MERCHANT_ACCOUNT_PREFIX):
            return Decision(message.answer(_RC.INVALID_CARD, TX="no such wallet account"))
        code = new_code(account.wallet)
        while code in self.book.codes:  # 10**17 codes per prefix: a clash is rare, never reused
            code = new_code(account.wallet)
        record = PaymentCode(code=code, account_id=account.account_id, expires_at=now + CODE_LIFETIME_S)
        answer = message.answer(_RC.APPROVED, A3=code, EX=int(record.expires_at), WL=account.wallet.value)
        return Decision(answer, (record,))

    def _balance(self, message: LinkMessage, now: float) -> Decision:
        account = self._account(message)
        if account is None:
            return Decision(message.answer(_RC.INVALID_CARD, TX="no such wallet account"))
        return Decision(message.answer(_RC.APPROVED, BL=account.balance))

    def _pay_order(self, message: LinkMessage, now: float) -> Decision:
        account = self._account(message)
        order = self.book.orders.get(message["QO"])
        if account is None:
            return Decision(message.answer(_RC.INVALID_CARD, TX="no such wallet account"))
        if order is None:
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such order"))
        state = self._order_state(order, now)
        if state is not OrderState.OPEN:
            code = {OrderState.EXPIRED: EXPIRED, OrderState.PAID: USED}.get(state, _RC.INVALID_TRANSACTION)
            return Decision(message.answer(code, TX=f"order is {state.value}", ON=state.value))
        if account.balance < order.amount:
            return Decision(message.answer(_RC.INSUFFICIENT_FUNDS, TX="not enough in the wallet"))
        voucher = self._numbers(VOUCHER_DIGITS)
        payment = Payment(
            voucher=voucher,
            key=order.order,
            account_id=account.account_id,
            merchant_id=order.merchant_id,
            terminal_id=order.terminal_id,
            amount=order.amount,
            state=PaymentState.PENDING,
            created_at=now,
            order=order.order,
        )
        paid_order = dataclasses.replace(order, state=OrderState.PAID, voucher=voucher)
        return Decision(message.answer(_RC.APPROVED, A4=voucher), (*self._charge(payment), paid_order))

    def _confirm(self, message: LinkMessage, now: float) -> Decision:
        payment = self.book.payments.get(message["A4"])
        if payment is None or payment.account_id != message["CA"]:
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such payment in this wallet"))
        state = self._payment_state(payment, now)
        if state is not PaymentState.PENDING:
            return Decision(message.answer(_RC.INVALID_TRANSACTION, TX=f"payment is {state.value}", ON=state.value))
        account = self.book.accounts[payment.account_id]
        if not password_matches(message["PW"], account.password_hash):
            return Decision(message.answer(_RC.INCORRECT_PIN, TX="wrong wallet password"))
        if account.balance < payment.amount:
            declined = dataclasses.replace(payment, state=PaymentState.DECLINED)
            return Decision(message.answer(_RC.INSUFFICIENT_FUNDS, TX="not enough in the wallet"), (declined,))
        return Decision(message.answer(_RC.APPROVED, A4=payment.voucher), self._charge(payment))

    # -- merchant side ----------------------------------------------------------------------------------------

    def _pay(self, message: LinkMessage, now: float) -> Decision:
        code_text, amount = message["A3"], int(message["AM"])
        try:
            wallet_of(code_text)
        except PaymentCodeError:
            return Decision(message.answer(_RC.INVALID_CARD, TX="not a payment code"))
        code = self.book.codes.get(code_text)
        if code is None:
            return Decision(message.answer(_RC.INVALID_CARD, TX="unknown payment code"))
        if code.used:
            return Decision(message.answer(USED, TX="payment code already used"))
        if now >= code.expires_at:
            return Decision(message.answer(EXPIRED, TX="payment code expired"))
        if amount <= 0:
            return Decision(message.answer(_RC.INVALID_AMOUNT, TX="amount must be above zero"))
        account = self.book.accounts[code.account_id]
        used = dataclasses.replace(code, used=True)
        payment = Payment(
            voucher=self._numbers(VOUCHER_DIGITS),
            key=_pay_key(message),
            account_id=account.account_id,
            merchant_id=message["MI"],
            terminal_id=message["TI"],
            amount=amount,
            state=PaymentState.PENDING,
            created_at=now,
        )
        if amount > NO_PASSWORD_LIMIT:
            return Decision(
                message.answer(PENDING, A4=payment.voucher, TX="waiting for the wallet password"), (used, payment)
            )
        if account.balance < amount:
            declined = dataclasses.replace(payment, state=PaymentState.DECLINED)
            return Decision(message.answer(_RC.INSUFFICIENT_FUNDS, TX="not enough in the wallet"), (used, declined))
        answer = message.answer(_RC.APPROVED, A4=payment.voucher, AC=self._auth_code(), WL=wallet_of(code_text).value)
        return Decision(answer, (used, *self._charge(payment)))

    def _payment_state(self, payment: Payment, now: float) -> PaymentState:
        if payment.state is PaymentState.PENDING and now >= payment.created_at + PENDING_LIFETIME_S:
            return PaymentState.CLOSED
        return payment.state

    def _order_state(self, order: Order, now: float) -> OrderState:
        if order.state is OrderState.OPEN and now >= order.expires_at:
            return OrderState.EXPIRED
        return order.state

    def _query(self, message: LinkMessage, now: float) -> Decision:
        voucher, order_no = message.get("A4"), message.get("QO")
        if order_no is not None:
            order = self.book.orders.get(order_no)
            if order is None or order.terminal_id != message["TI"]:
                return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such order for this terminal"))
            order_state = self._order_state(order, now)
            result = ORDER_RESULTS.get(order_state, _RC.INVALID_TRANSACTION)
            return Decision(
                message.answer(result, ON=order_state.value, AM=order.amount, QO=order.order, A4=order.voucher or None)
            )
        payment = self.book.payments.get(voucher or "")
        if payment is None or payment.terminal_id != message["TI"]:
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such payment for this terminal"))
        state = self._payment_state(payment, now)
        result = PAYMENT_RESULTS.get(state, _RC.INVALID_TRANSACTION)
        return Decision(message.answer(result, ON=state.value, AM=payment.amount, A4=payment.voucher))

    def _reverse(self, message: LinkMessage, now: float) -> Decision:
        original = self.book.payment_by_key(_pay_key(message))
        if original is None:
            # The reversal came first (the payment was lost or is still on its way): the payment's key is
            # remembered as refused, so that a late arrival is never charged.
            late = LinkMessage.of(Kind.PAY, RC=_RC.INVALID_TRANSACTION, TX="reversed before it arrived")
            tombstone = Answered(key=_pay_key(message), answer=encode_message(late, WALLET_LINK).decode("ascii"))
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such payment"), (tombstone,))
        answer = message.answer(_RC.APPROVED, A4=original.voucher, ON=PaymentState.REVERSED.value)
        if original.state is PaymentState.PAID:
            left = original.amount - original.refunded
            return Decision(answer, self._give_back(original, left, PaymentState.REVERSED))
        if original.state is PaymentState.PENDING:
            return Decision(answer, (dataclasses.replace(original, state=PaymentState.REVERSED),))
        return Decision(message.answer(_RC.APPROVED, A4=original.voucher, ON=original.state.value))

    def _paid_for(self, message: LinkMessage) -> Payment | LinkMessage:
        payment = self.book.payments.get(message["A4"])
        if payment is None or payment.merchant_id != message["MI"]:
            return message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such payment for this merchant")
        if payment.state is not PaymentState.PAID:
            return message.answer(_RC.INVALID_TRANSACTION, TX=f"payment is {payment.state.value}")
        return payment

    def _void(self, message: LinkMessage, now: float) -> Decision:
        payment = self._paid_for(message)
        if isinstance(payment, LinkMessage):
            return Decision(payment)
        if payment.refunded:
            return Decision(message.answer(_RC.INVALID_TRANSACTION, TX="partly refunded: refund the rest instead"))
        return Decision(
            message.answer(_RC.APPROVED, A4=payment.voucher),
            self._give_back(payment, payment.amount, PaymentState.VOIDED),
        )

    def _refund(self, message: LinkMessage, now: float) -> Decision:
        payment = self._paid_for(message)
        if isinstance(payment, LinkMessage):
            return Decision(payment)
        amount = int(message["AM"])
        if not 0 < amount <= payment.amount - payment.refunded:
            return Decision(message.answer(_RC.INVALID_AMOUNT, TX="more than is left to refund"))
        return Decision(
            message.answer(_RC.APPROVED, A4=payment.voucher, AM=amount),
            self._give_back(payment, amount, PaymentState.PAID),
        )

    def _reverse_give_back(self, message: LinkMessage, now: float) -> Decision:
        """Undo the void or refund sent under this TI ST DT, whose answer never reached the front-end.

        The money goes back the way it came (consumer → merchant, even below zero: the wallet recovers it from
        the consumer, as an issuer does for a reversed credit) and the payment returns to what it was. The
        give-back's key is then answered ``12`` (reversed): a late or repeated void or refund never gives back
        again. Answers ``25`` when no such void or refund arrived (it is refused if it arrives later)."""
        tail = (message["TI"], message["ST"], message["DT"])
        keys = {kind: " ".join((kind, *tail)) for kind in (Kind.VOID, Kind.REFUND)}
        found = [(kind, self.book.answered[key]) for kind, key in keys.items() if key in self.book.answered]
        if not found:
            tombstones = tuple(
                Answered(key=key, answer=_encoded(LinkMessage.of(kind, RC=_RC.INVALID_TRANSACTION, TX="reversed")))
                for kind, key in keys.items()
            )
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such void or refund"), tombstones)
        kind, text = found[0]
        first = decode_message(text.encode("ascii"), WALLET_LINK)
        if first.result != _RC.APPROVED:
            return Decision(message.answer(_RC.APPROVED, TX="nothing was given back"))
        payment = self.book.payments[first["A4"]]
        if kind == Kind.VOID and payment.state is PaymentState.VOIDED:
            amount, restored = payment.amount, dataclasses.replace(payment, state=PaymentState.PAID)
        elif kind == Kind.REFUND and payment.state is PaymentState.PAID and "AM" in dict(first.values):
            amount = int(first["AM"])
            restored = dataclasses.replace(payment, refunded=payment.refunded - amount)
        else:  # reversed or voided since: what was given back is part of a later, final give-back
            return Decision(message.answer(_RC.APPROVED, A4=payment.voucher, ON=payment.state.value, TX="moved on"))
        consumer, merchant = self._move(payment.account_id, _merchant_account(payment.merchant_id), amount)
        reversed_answer = LinkMessage.of(kind, RC=_RC.INVALID_TRANSACTION, TX="reversed")
        records = (consumer, merchant, restored, Answered(key=keys[kind], answer=_encoded(reversed_answer)))
        return Decision(message.answer(_RC.APPROVED, A4=payment.voucher, AM=amount, ON=restored.state.value), records)

    def _order(self, message: LinkMessage, now: float) -> Decision:
        amount = int(message["AM"])
        lifetime = int(message.get("QE") or ORDER_LIFETIME_S)
        if amount <= 0:
            return Decision(message.answer(_RC.INVALID_AMOUNT, TX="amount must be above zero"))
        if not 0 < lifetime <= MAX_ORDER_LIFETIME_S:
            return Decision(message.answer(_RC.FORMAT_ERROR, TX=f"order lifetime must be 1..{MAX_ORDER_LIFETIME_S} s"))
        order_no = self._numbers(ORDER_DIGITS)
        order = Order(
            order=order_no,
            key=merchant_key(message),
            merchant_id=message["MI"],
            terminal_id=message["TI"],
            amount=amount,
            expires_at=now + lifetime,
        )
        answer = message.answer(
            PENDING, QO=order_no, QR=QR_CONTENT_PREFIX + order_no, EX=int(order.expires_at), AM=amount
        )
        return Decision(answer, (order,))

    def _cancel(self, message: LinkMessage, now: float) -> Decision:
        order = self.book.orders.get(message["QO"])
        if order is None or order.terminal_id != message["TI"]:
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX="no such order for this terminal"))
        state = self._order_state(order, now)
        if state is OrderState.PAID:
            return Decision(
                message.answer(_RC.INVALID_TRANSACTION, TX="order is paid: refund it instead", A4=order.voucher)
            )
        if state is OrderState.CANCELLED:
            return Decision(message.answer(_RC.APPROVED, ON=state.value))
        return Decision(
            message.answer(_RC.APPROVED, ON=OrderState.CANCELLED.value),
            (dataclasses.replace(order, state=OrderState.CANCELLED),),
        )

    # -- end-of-day settlement (acquirer side: wallet/settlement.py) ----------------------------------------------

    def _settle_open(self, message: LinkMessage, now: float) -> Decision:
        day = message["DA"]
        try:
            records = open_batches(self.book, day)
        except SettlementError as exc:
            return Decision(message.answer(_RC.FORMAT_ERROR, TX=str(exc)))
        opened = [r for r in records if isinstance(r, SettlementBatch)] or batches_of(self.book, day)
        net = sum(batch.amount for batch in opened)
        return Decision(message.answer(_RC.APPROVED, CN=len(opened), NT=net), records)

    def _settle_batch(self, message: LinkMessage, now: float) -> Decision:
        batches = batches_of(self.book, message["DA"])
        index = int(message["IX"])
        if index >= len(batches):
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX=f"the date has {len(batches)} batch(es)"))
        batch = batches[index]
        return Decision(
            message.answer(
                _RC.APPROVED,
                WL=batch.wallet.value,
                MI=batch.merchant_id,
                DA=batch.business_date,
                NT=batch.amount,
                CN=batch.count,
                ON=batch.state.value,
            )
        )

    def _settle_mark(self, message: LinkMessage, now: float) -> Decision:
        try:
            wallet = Wallet(message["WL"])
            marked = mark_batch(self.book, wallet, message["DA"], message["MI"])
        except (ValueError, SettlementError) as exc:
            return Decision(message.answer(_RC.ORIGINAL_NOT_FOUND, TX=str(exc)[:120]))
        if self.book.batches[marked.key].state is marked.state:
            return Decision(message.answer(_RC.APPROVED, ON=marked.state.value, TX="settled already"))
        return Decision(message.answer(_RC.APPROVED, ON=marked.state.value), (marked,))


def order_of_qr(content: str) -> str:
    """The order number in an order QR's content; raises :class:`MessageDecodeError` for anything else."""
    if not content.startswith(QR_CONTENT_PREFIX) or not content[len(QR_CONTENT_PREFIX) :].isdigit():
        raise MessageDecodeError("not an acqsim order QR", field="QR", offset=0)
    return content[len(QR_CONTENT_PREFIX) :]
