"""Re-sending recorded requests and comparing the answers.

``--raw`` sends each recorded frame byte for byte (hex dumps and captures hold them). Otherwise each
financial request is rebuilt for a fresh session: the replaying terminal signs on, and the request keeps its
recorded fields except STAN, time and date, batch, PIN block (the test card's PIN under the new PIK) and MAC.
Masked card numbers (traces) are resolved against the configuration's test cards by first 6 / last 4 digits.
A rebuilt request carries the test card's *right* PIN (a recorded PIN block cannot be read back), so a
recorded 55 replays as 00 — replay such a day with ``--raw`` from a capture, or expect that difference.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from acqkit.config import AcqsimConfig, CardFixture, Endpoint
from terminal.pos import PosTerminal
from terminal.replay.diff import FieldDifference, diff_fields
from terminal.replay.sources import Recorded
from wire.codec import encode_pos_body_with_mac
from wire.constants import Mti
from wire.dissect import as_json, dissect_pos
from wire.fields import Field60
from wire.masking import mask_pan
from wire.paycrypto import encrypt_pin_block, mac_cup_ecb
from wire.posframe import PosFrame

FINANCIAL_MTIS = {Mti.FINANCIAL_REQUEST, Mti.AUTH_REQUEST, Mti.ADVICE}


@dataclasses.dataclass(slots=True)
class ReplayResult:
    recorded: Recorded
    answered: bool
    differences: list[FieldDifference]
    skipped: str = ""

    @property
    def ok(self) -> bool:
        return bool(self.skipped) or (self.answered and not self.differences)


def resolve_card(config: AcqsimConfig, shown: str) -> CardFixture | None:
    """The test card behind a PAN as recorded: in clear, masked (traces) or zero-filled (exported captures)."""
    for card in config.cards:
        if len(card.pan) == len(shown) and mask_pan(card.pan) == mask_pan(shown):
            return card
    return None


def _rebuild(pos: PosTerminal, recorded: Recorded, card: CardFixture) -> bytes:
    session = pos.session
    fields = {k: v for k, v in recorded.request_fields.items() if k not in ("52", "64")}
    now = session.clock()
    fields.update(
        {"t": recorded.mti, "11": session.state.next_stan(), "12": now.strftime("%H%M%S"), "13": now.strftime("%m%d")}
    )
    if "2" in fields:
        fields["2"] = card.pan
    if "35" in fields:
        fields["35"] = card.track2
    if "60" in fields:
        f60 = Field60.parse(fields["60"])
        fields["60"] = dataclasses.replace(f60, batch=session.state.batch).encode()
    if "52" in recorded.request_fields:
        fields["52"] = encrypt_pin_block(session._pik, card.pin, card.pan).hex().upper()
    body = encode_pos_body_with_mac(fields, lambda block: mac_cup_ecb(session._mak, block))
    return PosFrame(tpdu=session.tpdu, header=session.header, body=body).to_bytes()


async def replay(
    config: AcqsimConfig, exchanges: list[Recorded], against: Endpoint, *, raw: bool, ignored: frozenset[str]
) -> list[ReplayResult]:
    results = []
    with tempfile.TemporaryDirectory(prefix="acqsim-replay-") as state_dir:
        terminals: dict[str, PosTerminal] = {}
        for recorded in exchanges:
            terminal_id = recorded.request_fields.get("41", "")
            if raw:
                if recorded.raw is None:
                    results.append(ReplayResult(recorded, False, [], skipped="no raw bytes in this source"))
                    continue
                probe = PosTerminal(config, config.terminals[0].terminal_id, nac=against, state_dir=Path(state_dir))
                answer = await probe._send(recorded.raw)
            else:
                if recorded.mti not in FINANCIAL_MTIS:
                    results.append(ReplayResult(recorded, False, [], skipped=f"{recorded.mti}: not re-built"))
                    continue
                card = resolve_card(config, recorded.request_fields.get("2", "").split("=")[0])
                if card is None:
                    results.append(ReplayResult(recorded, False, [], skipped="card is not a configured test card"))
                    continue
                pos = terminals.get(terminal_id)
                if pos is None:
                    pos = PosTerminal(config, terminal_id, nac=against, state_dir=Path(state_dir))
                    signed = await pos.sign_on()
                    if signed is None or not signed.approved:
                        results.append(ReplayResult(recorded, False, []))
                        continue
                    terminals[terminal_id] = pos
                answer = await pos._send(_rebuild(pos, recorded, card))
            if answer is None:
                results.append(ReplayResult(recorded, False, []))
                continue
            replayed = as_json(dissect_pos(answer))["fields"]
            results.append(ReplayResult(recorded, True, diff_fields(recorded.answer_fields or {}, replayed, ignored)))
    return results
