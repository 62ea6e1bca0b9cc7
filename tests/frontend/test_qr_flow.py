"""QR payments through the front-end core (real HSM processor, real journal, the real wallet core on SQLite):
被扫 sale, expired and reused codes, pending then polled, void and refund by voucher, 主扫 order paid and
polled, cancel, settlement totals with QR, the wallet host down (98 and a store-and-forward reversal), the
terminal's reversal, and a malformed field 59."""

from __future__ import annotations

from pathlib import Path

import pytest

from frontend.effects import AskWallet, FailureKind, PeerFailure
from terminal.session import Original
from tests.frontend.harness import Harness
from wallet.codes import CODE_LIFETIME_S, NO_PASSWORD_LIMIT
from wallet.seed import OPENING_BALANCE, TEST_PASSWORD
from wire.codec import decode_pos_body
from wire.field59 import Field59
from wire.posframe import PosFrame
from wire.tlvlink import LinkMessage, decode_message
from wire.walletlink import WALLET_LINK
from wire.walletlink import Kind as WalletKind

ACCOUNT = "TEST-UNIONPAY-1"


@pytest.fixture
def fe(tmp_path: Path) -> Harness:
    return Harness(tmp_path).signed_on()


def _issue(fe: Harness) -> str:
    decision = fe.wallet.decide(LinkMessage.of(WalletKind.CODE, CA=ACCOUNT), fe.wallet_now)
    fe.wallet.apply(decision.records)
    return decision.answer["A3"]


def _balance(fe: Harness) -> int:
    return fe.wallet.book.accounts[ACCOUNT].balance


def test_a_scanned_code_pays_and_answers_the_voucher(fe: Harness) -> None:
    sale = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=1234, qr_data=Field59(payment_code=_issue(fe))))
    assert sale.approved
    assert sale.trusted
    voucher = Field59.parse(sale.fields["59"]).voucher
    assert voucher
    assert len(sale.fields["38"]) == 6
    assert not {"2", "35", "52", "55"} & set(sale.fields)
    assert _balance(fe) == OPENING_BALANCE - 1234
    settled = fe.exchange("settlement", fe.terminal.settlement())
    assert settled.approved
    assert settled.fields["48"][30] == "1"  # the front-end's totals count the QR sale as the terminal does


def test_an_expired_or_reused_code_is_refused(fe: Harness) -> None:
    code = _issue(fe)
    assert fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(payment_code=code))).approved
    again = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(payment_code=code)))
    assert again.response_code == "94"
    old = _issue(fe)
    fe.wallet_now += CODE_LIFETIME_S
    expired = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(payment_code=old)))
    assert expired.response_code == "54"
    foreign = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(payment_code="9" * 19)))
    assert foreign.response_code == "14"
    assert _balance(fe) == OPENING_BALANCE - 100


def test_a_pending_payment_is_polled_until_the_consumer_confirms(fe: Harness) -> None:
    amount = NO_PASSWORD_LIMIT + 100
    request = fe.terminal.qr("qr_sale", amount=amount, qr_data=Field59(payment_code=_issue(fe)))
    pending = fe.exchange("qr_sale", request)
    assert pending.response_code == "09"
    assert fe.terminal.state.pending_reversal is not None  # kept until the sale ends
    voucher = Field59.parse(pending.fields["59"]).voucher
    assert voucher
    query = fe.terminal.qr("qr_query", qr_data=Field59(voucher=voucher), original=Original(stan=pending.fields["11"]))
    assert fe.exchange("qr_query", query).response_code == "09"
    confirm = fe.wallet.decide(
        LinkMessage.of(WalletKind.CONFIRM, CA=ACCOUNT, A4=voucher, PW=TEST_PASSWORD), fe.wallet_now
    )
    fe.wallet.apply(confirm.records)
    query = fe.terminal.qr("qr_query", qr_data=Field59(voucher=voucher), original=Original(stan=pending.fields["11"]))
    paid = fe.exchange("qr_query", query)
    assert paid.approved
    fe.terminal.qr_settled(pending, paid)
    assert fe.terminal.state.pending_reversal is None
    assert fe.exchange("settlement", fe.terminal.settlement()).fields["48"][30] == "1"


def test_void_and_refund_quote_the_voucher(fe: Harness) -> None:
    sale = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=1000, qr_data=Field59(payment_code=_issue(fe))))
    voucher = Field59.parse(sale.fields["59"]).voucher
    original = Original(stan=sale.fields["11"], rrn=sale.fields["37"], local_date=sale.fields["13"])
    refund = fe.exchange(
        "qr_refund", fe.terminal.qr("qr_refund", amount=300, qr_data=Field59(voucher=voucher), original=original)
    )
    assert refund.approved
    assert _balance(fe) == OPENING_BALANCE - 700
    other = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=400, qr_data=Field59(payment_code=_issue(fe))))
    other_voucher = Field59.parse(other.fields["59"]).voucher
    void = fe.exchange(
        "qr_void",
        fe.terminal.qr(
            "qr_void", amount=400, qr_data=Field59(voucher=other_voucher), original=Original(stan=other.fields["11"])
        ),
    )
    assert void.approved
    again = fe.exchange(
        "qr_void",
        fe.terminal.qr(
            "qr_void", amount=400, qr_data=Field59(voucher=other_voucher), original=Original(stan=other.fields["11"])
        ),
    )
    assert again.response_code == "25"  # the sale is voided: nothing left to void
    assert _balance(fe) == OPENING_BALANCE - 700
    assert fe.exchange("settlement", fe.terminal.settlement()).fields["48"][30] == "1"


def test_an_order_qr_paid_by_the_app_and_polled(fe: Harness) -> None:
    order = fe.exchange("qr_order", fe.terminal.qr("qr_order", amount=2500, qr_data=Field59(order_lifetime_s=120)))
    assert order.response_code == "09"
    shown = Field59.parse(order.fields["59"])
    assert shown.order
    assert shown.qr_content == "acqsim-qr:" + shown.order
    pay = fe.wallet.decide(LinkMessage.of(WalletKind.PAY_ORDER, CA=ACCOUNT, QO=shown.order), fe.wallet_now)
    fe.wallet.apply(pay.records)
    query = fe.terminal.qr("qr_query", qr_data=Field59(order=shown.order), original=Original(stan=order.fields["11"]))
    paid = fe.exchange("qr_query", query)
    assert paid.approved
    fe.terminal.qr_settled(order, paid)
    assert fe.exchange("settlement", fe.terminal.settlement()).fields["48"][30] == "1"


def test_an_order_cancelled(fe: Harness) -> None:
    order = fe.exchange("qr_order", fe.terminal.qr("qr_order", amount=2500, qr_data=Field59()))
    number = Field59.parse(order.fields["59"]).order
    cancel = fe.terminal.qr("qr_cancel", qr_data=Field59(order=number), original=Original(stan=order.fields["11"]))
    assert fe.exchange("qr_cancel", cancel).approved
    late = fe.wallet.decide(LinkMessage.of(WalletKind.PAY_ORDER, CA=ACCOUNT, QO=number or ""), fe.wallet_now)
    assert late.answer.result == "12"


def test_the_wallet_host_down_answers_98_and_queues_a_reversal(fe: Harness) -> None:
    fe.overrides[AskWallet] = lambda effect: PeerFailure("wallet", FailureKind.UNAVAILABLE)
    sale = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(payment_code=_issue(fe))))
    assert sale.response_code == "98"
    [reversal] = fe.wallet_reversals
    assert (reversal.kind, reversal["ST"]) == (WalletKind.REVERSE, sale.fields["11"])
    assert [text for _, text in fe.journal.pending_wallet_reversals()]  # durable: the forwarder sends it later


def test_the_terminals_reversal_goes_to_the_wallet(fe: Harness) -> None:
    request = fe.terminal.qr("qr_sale", amount=600, qr_data=Field59(payment_code=_issue(fe)))
    fe.send(request)  # the answer is lost: the terminal keeps its reversal
    assert _balance(fe) == OPENING_BALANCE - 600
    reversal = fe.terminal.reversal_due()
    assert reversal is not None
    done = fe.exchange("reversal", reversal)
    assert done.approved
    assert _balance(fe) == OPENING_BALANCE
    assert fe.exchange("reversal", fe.terminal.reversal_due() or reversal).approved  # idempotent


def test_a_malformed_field_59_is_a_format_error(fe: Harness) -> None:
    request = fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(payment_code=_issue(fe)))
    fields = decode_pos_body(PosFrame.parse(request).body)
    fields.pop("64")
    fields["59"] = "A3019123"  # the value runs past the end of the field
    bad = fe.exchange("qr_sale", fe.terminal._frame(fields, mac=True))
    assert bad.response_code == "30"
    assert bad.trusted  # answered with a MAC: the terminal can trust the refusal
    no_code = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=100, qr_data=Field59(other=(("ZZ", "x"),))))
    assert no_code.response_code == "14"
    assert _balance(fe) == OPENING_BALANCE


def _wallet_gives_back_then_the_answer_is_lost(fe: Harness) -> None:
    """The wallet carries out the void or refund (durably), and then its answer never comes back."""

    def lost(effect: AskWallet) -> PeerFailure:
        decision = fe.wallet.decide(effect.request, fe.wallet_now)
        fe.wallet_store.commit(decision.records)
        fe.wallet.apply(decision.records)
        return PeerFailure("wallet", FailureKind.TIMEOUT)

    fe.overrides[AskWallet] = lost  # type: ignore[assignment]


@pytest.mark.parametrize("kind", ["qr_refund", "qr_void"])
def test_a_void_or_refund_whose_answer_is_lost_is_reversed_by_store_and_forward(fe: Harness, kind: str) -> None:
    sale = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=1000, qr_data=Field59(payment_code=_issue(fe))))
    voucher = Field59.parse(sale.fields["59"]).voucher
    assert voucher
    before = (_balance(fe), fe.wallet.book.payments[voucher])
    _wallet_gives_back_then_the_answer_is_lost(fe)
    amount = 300 if kind == "qr_refund" else 1000
    original = Original(stan=sale.fields["11"], rrn=sale.fields["37"], local_date=sale.fields["13"])
    give_back = fe.terminal.qr(kind, amount=amount, qr_data=Field59(voucher=voucher), original=original)
    answer = fe.exchange(kind, give_back)
    assert answer.response_code == "98"  # the terminal: not done
    assert _balance(fe) == before[0] + amount  # the wallet did give it back
    [reversal] = fe.wallet_reversals
    assert (reversal.kind, reversal["ST"]) == (WalletKind.REVERSE_GIVE_BACK, answer.fields["11"])
    [(_, text)] = fe.journal.pending_wallet_reversals()  # durable: the forwarder sends it until acknowledged
    assert decode_message(text.encode("ascii"), WALLET_LINK) == reversal
    # The forwarder delivers it (twice: a retry is answered from memory and changes nothing).
    for _ in range(2):
        undo = fe.wallet.decide(reversal, fe.wallet_now)
        fe.wallet_store.commit(undo.records)
        fe.wallet.apply(undo.records)
        assert undo.answer.result == "00"
        assert (_balance(fe), fe.wallet.book.payments[voucher]) == before  # exactly as before
    # The give-back retried under its key is refused, never given twice.
    del fe.overrides[AskWallet]
    late = fe.wallet.decide(give_back_key(reversal, kind, voucher, amount), fe.wallet_now)
    assert late.answer.result == "12"
    assert fe.exchange("settlement", fe.terminal.settlement()).approved


def give_back_key(reversal: LinkMessage, kind: str, voucher: str, amount: int) -> LinkMessage:
    key = {tag: reversal[tag] for tag in ("TI", "MI", "ST", "DT")}
    if kind == "qr_void":
        return LinkMessage.of(WalletKind.VOID, **key, A4=voucher)
    return LinkMessage.of(WalletKind.REFUND, **key, A4=voucher, AM=amount)


def test_the_terminals_reversal_of_a_refund_undoes_it_at_the_wallet(fe: Harness) -> None:
    sale = fe.exchange("qr_sale", fe.terminal.qr("qr_sale", amount=800, qr_data=Field59(payment_code=_issue(fe))))
    voucher = Field59.parse(sale.fields["59"]).voucher
    assert voucher
    before = (_balance(fe), fe.wallet.book.payments[voucher])
    original = Original(stan=sale.fields["11"], rrn=sale.fields["37"], local_date=sale.fields["13"])
    fe.send(fe.terminal.qr("qr_refund", amount=250, qr_data=Field59(voucher=voucher), original=original))
    assert _balance(fe) == before[0] + 250  # given back; the answer is lost: the terminal keeps its reversal
    reversal = fe.terminal.reversal_due()
    assert reversal is not None
    assert fe.exchange("reversal", reversal).approved
    assert (_balance(fe), fe.wallet.book.payments[voucher]) == before
    assert fe.exchange("reversal", fe.terminal.reversal_due() or reversal).approved  # idempotent
    assert (_balance(fe), fe.wallet.book.payments[voucher]) == before
