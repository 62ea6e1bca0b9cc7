"""The web view's "try it" examples: each a short story a terminal acts out against the running services.

Each example says in one line (English and Chinese) what it shows, runs on a real :class:`PosTerminal` over
the NAC, and reports the outcome and the transaction ids its messages are traced under (the page highlights
their hops). Failures are made the way they happen: a wrong PIN typed, a card reported lost, a MAC that does
not match (built by the message composer), an answer lost on its way back (a relay in front of the NAC
swallows it, and the terminal's automatic reversal follows).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable
from typing import Any, Final

import anyio

from acqkit.config import AcqsimConfig, CardFixture
from acqsim.demo import LossyRelay
from acqsim.web.explain import RESPONSE_MEANINGS_ZH
from terminal.composer import Edits, check_answer, compose
from terminal.pos import PosTerminal
from terminal.session import Outcome
from wire.constants import RESPONSE_MEANINGS, ResponseCode
from wire.masking import mask_pan

#: Amounts the examples use, in minor units.
PURCHASE_AMOUNT: Final = 1_234
PREAUTH_AMOUNT: Final = 50_000
LOST_PURCHASE_AMOUNT: Final = 888
#: A MAC no key produces on purpose (the bad-MAC example).
WRONG_MAC: Final = bytes(8)
#: How long the "try it" terminal waits for an answer; the lost-answer example costs this much.
TRY_ANSWER_TIMEOUT_S: Final = 1.5
WRONG_PIN: Final = "000000"


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str
    title_en: str
    title_zh: str
    story_en: str
    story_zh: str
    #: A card this example always uses (the lost card), whatever card was picked.
    card_status: str | None = None


SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            name="purchase",
            title_en="Purchase 12.34",
            title_zh="消费 12.34",
            story_en="A sale with PIN: the ledger debits the card and credits the merchant.",
            story_zh="凭密消费：核心账务借记持卡人账户，贷记商户。",
        ),
        Scenario(
            name="balance",
            title_en="Balance inquiry",
            title_zh="余额查询",
            story_en="The card's available balance comes back in field 54; no money moves.",
            story_zh="可用余额在54域返回，不动账。",
        ),
        Scenario(
            name="preauth",
            title_en="Pre-authorisation 500.00",
            title_zh="预授权 500.00",
            story_en="A hold is placed on the card (hotel, car hire); the money is taken later by a completion.",
            story_zh="在卡上冻结额度（酒店、租车），之后由预授权完成扣款。",
        ),
        Scenario(
            name="reversal",
            title_en="Lost answer, then reversal",
            title_zh="应答丢失，自动冲正",
            story_en="The answer to a purchase is lost on its way back: the terminal times out, then sends the "
            "reversal it stored before sending (0400, 39=98) so the host undoes the debit.",
            story_zh="消费应答在返回途中丢失：终端超时后发送发送前已保存的冲正（0400，39=98），主机撤销扣款。",
        ),
        Scenario(
            name="settlement",
            title_en="Settlement",
            title_zh="结算",
            story_en="The terminal sends its batch totals (0500); the host compares them with its journal.",
            story_zh="终端上送批次总额（0500），主机与流水核对。",
        ),
        Scenario(
            name="wrong_pin",
            title_en="Wrong PIN",
            title_zh="密码错误",
            story_en="The cardholder types a wrong PIN: the HSM's PIN check fails and the answer is 55.",
            story_zh="持卡人输错密码：加密机校验PIN失败，应答55。",
        ),
        Scenario(
            name="bad_mac",
            title_en="Bad MAC",
            title_zh="MAC错误",
            story_en="The request's MAC does not match (as after a wrong key or a changed byte): the HSM's MAC "
            "check fails and the front-end answers A0 — sign on again.",
            story_zh="请求的MAC不符（密钥错误或报文被改动）：加密机校验MAC失败，前置应答A0，需重新签到。",
        ),
        Scenario(
            name="lost_card",
            title_en="Lost card",
            title_zh="挂失卡",
            story_en="A card reported lost: the ledger refuses it with 41 (pick up card).",
            story_zh="已挂失的卡：核心账务拒绝，应答41（没收卡）。",
            card_status="lost",
        ),
    )
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class RunResult:
    scenario: str
    response_code: str
    approved: bool
    transactions: list[str]
    lines_en: list[str]
    lines_zh: list[str]

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


#: What an outcome line is about, in English and Chinese.
ANSWER: Final = ("Answer", "应答")
PURCHASE: Final = ("Purchase", "消费")
REVERSAL: Final = ("Reversal", "冲正")
SETTLEMENT: Final = ("Settlement", "结算")


def _outcome_lines(outcome: Outcome | None, what: tuple[str, str]) -> tuple[str, str, str]:
    """The response code, and one line each in English and Chinese saying what came back."""
    en, zh = what
    if outcome is None:
        return "none", f"{en}: no answer in time.", f"{zh}：超时未收到应答。"
    code = outcome.response_code
    english = RESPONSE_MEANINGS[ResponseCode(code)] if code in RESPONSE_MEANINGS_ZH else "unknown code"
    chinese = RESPONSE_MEANINGS_ZH.get(code, "未知应答码")
    if not outcome.trusted:
        english, chinese = f"{english} (its MAC did not verify)", f"{chinese}（MAC校验失败）"
    return code, f"{en}: 39={code} {english}.", f"{zh}：39={code} {chinese}。"


Lines = list[tuple[str, str]]


def _txn(pos: PosTerminal) -> str:
    """The id the last request is traced under: ``T<terminal>-<STAN>``."""
    return f"T{pos.session.state.terminal_id}-{pos.session.state.stan:06d}"


async def _financial(
    pos: PosTerminal, kind: str, card: CardFixture, amount: int, pin: str | None
) -> tuple[str, Lines, list[str]]:
    outcome = await pos.financial(kind, card, amount=amount, pin=pin)
    code, english, chinese = _outcome_lines(outcome, ANSWER)
    return code, [(english, chinese)], [_txn(pos)]


async def _purchase(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    return await _financial(pos, "purchase", card, PURCHASE_AMOUNT, card.pin)


async def _balance(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    return await _financial(pos, "balance", card, 0, card.pin)


async def _preauth(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    return await _financial(pos, "preauth", card, PREAUTH_AMOUNT, card.pin)


async def _wrong_pin(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    return await _financial(pos, "purchase", card, PURCHASE_AMOUNT, WRONG_PIN if card.pin != WRONG_PIN else "999999")


async def _lost_card(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    return await _financial(pos, "purchase", card, PURCHASE_AMOUNT, card.pin)


async def _reversal(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    ctx.relay.drop_next_answer = True
    lost = await pos.financial("purchase", card, amount=LOST_PURCHASE_AMOUNT, pin=card.pin)
    transaction = _txn(pos)
    _, english, chinese = _outcome_lines(lost, PURCHASE)
    reversal = await pos.send_pending_reversal()
    code, rev_english, rev_chinese = _outcome_lines(reversal, REVERSAL)
    return code, [(english, chinese), (rev_english, rev_chinese)], [transaction]


async def _settlement(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    if not pos.session.state.signed_on:
        await pos.sign_on()
    outcome, totals = await pos.settle()
    code, english, chinese = _outcome_lines(outcome, SETTLEMENT)
    debits = f"{totals.domestic.debit_count} debit(s), {totals.domestic.credit_count} credit(s)"
    return (
        code,
        [
            (
                f"Totals sent: {debits}.",
                f"上送总额：借记{totals.domestic.debit_count}笔，贷记{totals.domestic.credit_count}笔。",
            ),
            (english, chinese),
        ],
        [_txn(pos)],
    )


async def _bad_mac(ctx: TryIt, pos: PosTerminal, card: CardFixture) -> tuple[str, Lines, list[str]]:
    await pos.send_pending_reversal()
    if not pos.session.state.signed_on:
        await pos.sign_on()
    request = compose(
        pos.session, "purchase", card, amount=PURCHASE_AMOUNT, pin=card.pin, edits=Edits(raw_mac=WRONG_MAC)
    )
    pos.save()
    answer = await pos.send_raw(request)
    if answer is None:
        code, english, chinese = _outcome_lines(None, ANSWER)
        return code, [(english, chinese)], [_txn(pos)]
    checked = check_answer(pos.session, answer)
    code = checked.response_code
    english = RESPONSE_MEANINGS[ResponseCode(code)] if code in RESPONSE_MEANINGS_ZH else "unknown code"
    return (
        code,
        [
            (
                f"Answer: 39={code} {english}; the answer's own MAC {checked.mac}.",
                f"应答：39={code} {RESPONSE_MEANINGS_ZH.get(code, '')}。",
            )
        ],
        [_txn(pos)],
    )


Step = Callable[["TryIt", PosTerminal, CardFixture], Awaitable[tuple[str, Lines, list[str]]]]
STEPS: Final[dict[str, Step]] = {
    "purchase": _purchase,
    "balance": _balance,
    "preauth": _preauth,
    "reversal": _reversal,
    "settlement": _settlement,
    "wrong_pin": _wrong_pin,
    "bad_mac": _bad_mac,
    "lost_card": _lost_card,
}


class TryIt:
    """Runs the examples for the web view: one at a time per terminal (a terminal does one thing at a time)."""

    def __init__(self, config: AcqsimConfig, relay: LossyRelay, relay_port: int) -> None:
        self.config = config
        self.relay = relay
        self.relay_port = relay_port
        self._locks: dict[str, anyio.Lock] = {}

    def cards(self) -> list[dict[str, str]]:
        """The test cards as the page may show them: masked, with their label."""
        return [
            {"index": str(i), "pan": mask_pan(c.pan), "status": c.status, "note": c.note}
            for i, c in enumerate(self.config.cards)
        ]

    def _card(self, scenario: Scenario, index: int) -> CardFixture:
        if scenario.card_status is not None:
            return next(c for c in self.config.cards if c.status == scenario.card_status)
        if not 0 <= index < len(self.config.cards):
            raise ValueError(f"no test card number {index}")
        return self.config.cards[index]

    async def run(self, name: str, terminal_id: str, card_index: int) -> RunResult:
        """Run one example; ``ValueError`` for an unknown example, terminal or card."""
        if name not in SCENARIOS:
            raise ValueError(f"no example called {name!r}")
        scenario = SCENARIOS[name]
        card = self._card(scenario, card_index)
        self.config.terminal(terminal_id)  # ConfigError (a ValueError) if unknown
        nac = dataclasses.replace(self.config.nac.listen, host="127.0.0.1", port=self.relay_port)
        async with (
            self._locks.setdefault(terminal_id, anyio.Lock()),
            PosTerminal(self.config, terminal_id, nac=nac, timeout=TRY_ANSWER_TIMEOUT_S) as pos,
        ):
            code, lines, transactions = await STEPS[name](self, pos, card)
        return RunResult(
            scenario=name,
            response_code=code,
            approved=code == ResponseCode.APPROVED,
            transactions=transactions,
            lines_en=[scenario.story_en, *(english for english, _ in lines)],
            lines_zh=[scenario.story_zh, *(chinese for _, chinese in lines)],
        )
