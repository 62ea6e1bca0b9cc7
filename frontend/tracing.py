"""What the front-end's trace shows of its HSM, ledger and scheme switch calls: the host-link message, the
switch-link message and its answer (dissected masked, the PIN block never shown, the MAC as zeros), or the HSM
command code only (never a key, PIN block or MAC), and one note per result, never a value.

An off-us request (:class:`~frontend.effects.AskScheme`) is traced hop by hop as the interpreter carries it out
(:class:`SchemeTrace`): CA at the acquirer's HSM when there is a PIN, then the switch-link request as sent (52
hidden) and the switch's answer (39, 38)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal

from core_ledger.client import HostFrame, host_frame
from frontend.effects import (
    AskLedger,
    DecryptTrack,
    DecryptTrackBlock,
    Effect,
    FailureKind,
    GenerateArpc,
    GenerateMac,
    GenerateWorkingKeys,
    PeerFailure,
    VerifyArqc,
    VerifyMac,
    VerifyMacAndPin,
    VerifyPin,
)
from hsm_sim.client import PinVerification
from wire.errors import WireError
from wire.switchlink import SWITCH_MAC_HEX_LEN, SwitchHeader, SwitchMessage, switch_mac_block
from wire.trace import TraceWriter

Link = Literal["hsm", "host", "switch"]
TRACED: Final = (
    AskLedger,
    GenerateWorkingKeys,
    VerifyMac,
    GenerateMac,
    VerifyPin,
    VerifyMacAndPin,
    VerifyArqc,
    GenerateArpc,
    DecryptTrack,
    DecryptTrackBlock,
)
#: Field 128 as traced: the MAC is the HSM's and is never shown.
_MAC_SHOWN: Final = b"0" * SWITCH_MAC_HEX_LEN
#: CA (PIN from the terminal's TPK to the acquirer zone's ZPK) and its answer code.
_TRANSLATE_PIN: Final = "CA"
_TRANSLATE_PIN_ANSWER: Final = "CB"
_HSM_CODES: Final = {
    GenerateWorkingKeys: "A0",
    VerifyMac: "M8",
    GenerateMac: "M6",
    VerifyPin: "DC",
    VerifyArqc: "KQ",
    GenerateArpc: "KQ",
    DecryptTrack: "M2",
    DecryptTrackBlock: "M2",
}
#: Notes for the chip and MPOS commands, by (effect, whether the result is ``True``): never a value.
_NOTES: Final[dict[tuple[type, bool], str]] = {
    (VerifyArqc, False): "ARQC NOT verified",
    (GenerateArpc, False): "ARPC generated",
    (DecryptTrack, False): "track decrypted",
    (DecryptTrackBlock, False): "track decrypted, TDK",
}
#: The 4-character header placeholder a traced HSM command is shown with, and the error code of its answer.
_HSM_HEADER: Final = "----"
_ANSWER_SHOWN: Final = b"00"


#: Each traced HSM command as sent and as answered (built once: the views are constants).
_HSM_VIEWS: Final = {kind: f"{_HSM_HEADER}{code}".encode("ascii") for kind, code in _HSM_CODES.items()}
_DUKPT_PIN_VIEW: Final = f"{_HSM_HEADER}GQ".encode("ascii")  # the DUKPT PIN: verified from the BDK and the KSN
_ANSWER_VIEWS: Final = {view: view + _ANSWER_SHOWN for view in [*_HSM_VIEWS.values(), _DUKPT_PIN_VIEW]}

#: The peer each link reaches (any other link is the HSM's); built once: a dict a call showed in the profile.
_PEERS: Final[Mapping[str, str]] = {"host": "ledger", "switch": "scheme"}

#: What one traced part shows: link, peer, the payload sent, the payload of its answer (the note says what the
#: answer was; the ledger's is empty), and the note sent (the effect's name).
_PartView = tuple[Link, str, bytes, bytes, str]
#: Each HSM command's part view, built once (EffectTrace runs on the event loop, several times a purchase).
_HSM_PARTS: Final[dict[type, _PartView]] = {
    kind: ("hsm", "hsm", view, _ANSWER_VIEWS[view], kind.__name__) for kind, view in _HSM_VIEWS.items()
}
_DUKPT_PIN_PART: Final[_PartView] = (
    "hsm",
    "hsm",
    _DUKPT_PIN_VIEW,
    _ANSWER_VIEWS[_DUKPT_PIN_VIEW],
    VerifyPin.__name__,
)


def _part_view(effect: Effect, frame: HostFrame | None) -> _PartView:
    if isinstance(effect, AskLedger):  # the message the client sent, encoded once for both
        return "host", _PEERS["host"], (frame or host_frame(effect.request)).payload, b"", AskLedger.__name__
    if isinstance(effect, VerifyPin) and effect.ksn is not None:
        return _DUKPT_PIN_PART
    return _HSM_PARTS[type(effect)]


def _peer(link: Link) -> str:
    return _PEERS.get(link, "hsm")


#: The note of each PIN verdict (built once: an enum's ``value`` is a property call).
_PIN_NOTES: Final = {verdict: f"PIN {verdict.value}" for verdict in PinVerification}


def result_note(result: Any) -> str:
    """A trace note for an HSM or ledger result: what it said, never a value."""
    if isinstance(result, PeerFailure):
        return f"{result.peer} {result.kind.value}"
    if isinstance(result, bool):
        return "verified" if result else "NOT verified"
    if isinstance(result, PinVerification):
        return _PIN_NOTES[result]
    if isinstance(result, tuple):
        return "PIK, MAK and TDK generated" if len(result) == 3 else "PIK and MAK generated"
    if isinstance(result, bytes):
        return "MAC generated"
    code = getattr(result, "response_code", None)
    return str(getattr(code, "value", code))


def _note(effect: Effect, result: Any) -> str:
    if isinstance(result, PeerFailure):
        return result_note(result)
    if isinstance(effect, VerifyArqc):
        return "ARQC verified, ARPC generated" if result is not None else "ARQC NOT verified"
    return _NOTES.get((type(effect), result is True)) or result_note(result)


class EffectTrace:
    """Records one traced effect: each part on the way out, then each part's result on the way in (M8 and DC
    sent together are traced as the two commands they are). ``frame``: the message a ledger request went as
    (:func:`core_ledger.client.host_frame`), not encoded again for the trace."""

    __slots__ = ("correlation", "parts", "trace")

    def __init__(
        self, trace: TraceWriter, effect: Effect, correlation: str | None, frame: HostFrame | None = None
    ) -> None:
        self.trace, self.correlation = trace, correlation
        parts = (effect.mac, effect.pin) if isinstance(effect, VerifyMacAndPin) else (effect,)
        self.parts = [(part, _part_view(part, frame)) for part in parts]
        record = trace.record
        for _part, (link, peer, payload, _answer, name) in self.parts:
            record(direction="out", link=link, peer=peer, payload=payload, correlation_id=correlation, note=name)

    def answered(self, result: Any) -> None:
        results = result if len(self.parts) > 1 else (result,)
        record, correlation = self.trace.record, self.correlation
        for (part, (link, peer, _payload, answer, _name)), part_result in zip(self.parts, results, strict=True):
            record(
                direction="in",
                link=link,
                peer=peer,
                payload=answer,
                correlation_id=correlation,
                note=_note(part, part_result),
            )


def _switch_frame(header: SwitchHeader, fields: Mapping[str, str]) -> bytes:
    """A switch frame as traced: the body with a zero MAC in 128 (empty if the fields do not encode: the link
    refuses them too)."""
    try:
        body = switch_mac_block({key: value for key, value in fields.items() if key != "128"}) + _MAC_SHOWN
        return header.to_bytes(len(body)) + body
    except (WireError, ValueError):
        return b""


class SchemeTrace:
    """The hops of one off-us request, recorded as they happen (``trace=None``: nothing is recorded)."""

    def __init__(self, trace: TraceWriter | None, correlation: str | None) -> None:
        self.trace, self.correlation = trace, correlation

    def _record(self, direction: Literal["in", "out"], link: Link, payload: bytes, note: str) -> None:
        if self.trace is not None:
            self.trace.record(
                direction=direction,
                link=link,
                peer=_peer(link),
                payload=payload,
                correlation_id=self.correlation,
                note=note,
            )

    def translating_pin(self) -> None:
        self._record("out", "hsm", f"{_HSM_HEADER}{_TRANSLATE_PIN}".encode("ascii"), "TranslatePin")

    def translated_pin(self, error_code: str | None) -> None:
        """``error_code``: the HSM's (``"00"``: translated), or ``None`` when the HSM gave no answer."""
        answer = f"{_HSM_HEADER}{_TRANSLATE_PIN_ANSWER}{error_code or ''}".encode("ascii")
        note = {"00": "PIN translated", None: "hsm unavailable"}.get(error_code, f"PIN NOT translated ({error_code})")
        self._record("in", "hsm", answer, note)

    def sending(self, header: SwitchHeader, fields: Mapping[str, str]) -> None:
        self._record("out", "switch", _switch_frame(header, fields), "AskScheme")

    def answered(self, answer: SwitchMessage) -> None:
        self._record("in", "switch", _switch_frame(answer.header, answer.fields), answer.fields.get("39", ""))

    def failed(self, kind: FailureKind) -> None:
        self._record("in", "switch", b"", f"scheme {kind.value}")
