"""The echo host's rules, sans-IO: one POS request frame in, its canned answer frame out.

It stands where the NAC would and answers at once, approving everything, so that a load run measures the load
generator and nothing else. It is not a host: no ledger, no PIN check, the request's MAC is not verified.
What it does do is what a terminal checks, so an unmodified :class:`~terminal.session.TerminalSession` trusts
its answers:

- the answer MTI is the request's plus 10, the TPDU swapped, the header kept;
- fields 2, 3, 4, 11, 12, 13, 14, 25, 41, 42, 49, 60 and 61 are echoed; 37 (RRN) and 38 (authorisation code)
  are filled in, 39 is ``00``;
- a sign-on (0800 with 60.3 ``003``/``004``) is answered with working keys in field 62: TEST keys of this
  module, under the TMK of the terminal named in field 41 (a terminal not in the configuration gets the first
  terminal's TMK, as ``acqsim load``'s terminals share it), with their check values;
- an answer to a request that carries a MAC (field 64) carries one too, the CUP ECB MAC under the TEST MAK.

A request that does not decode gets no answer (``None``): the sender times out, as with a host that drops it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from wire.codec import decode_pos_body, encode_pos_body, encode_pos_body_with_mac
from wire.constants import NetworkCode, ResponseCode
from wire.errors import WireError
from wire.fields import Field60, SignOnKeys
from wire.paycrypto import EcbKey, encrypt_key_under, key_check_value, mac_cup_ecb
from wire.posframe import PosFrame

#: The working keys the echo host hands out (TEST material, odd parity): PIN key and MAC key.
ECHO_TEST_PIK: Final = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
ECHO_TEST_MAK: Final = bytes.fromhex("1C587F1C13924FEFFEDCBA9876543210")
#: Request fields copied into the answer.
ECHOED_FIELDS: Final[tuple[str, ...]] = ("2", "3", "4", "11", "12", "13", "14", "25", "41", "42", "49", "60", "61")
#: The authorisation code of every approval.
ECHO_AUTH_CODE: Final = "ECHO00"
_KCV_LEN: Final = 4
_SIGN_ON_CODES: Final = frozenset({NetworkCode.SIGN_ON_DOUBLE_KEYS.value, NetworkCode.SIGN_ON_WITH_TDK.value})
_MTI_ANSWER_STEP: Final = 10


def answer_mti(mti: str) -> str:
    """The MTI that answers ``mti``: its function digit plus one (``0200`` → ``0210``)."""
    return f"{int(mti) + _MTI_ANSWER_STEP:04d}"


class EchoHost:
    """Canned answers. ``tmks`` maps terminal id → clear TMK (TEST material); the first entry is the default."""

    def __init__(self, tmks: Mapping[str, bytes]) -> None:
        if not tmks:
            raise ValueError("the echo host needs at least one terminal's TMK")
        self._keys_under: dict[bytes, str] = {}  # TMK → field 62, computed once per TMK
        self._tmks = dict(tmks)
        self._default_tmk = next(iter(self._tmks.values()))
        self._rrn = 0
        self._mak = EcbKey(ECHO_TEST_MAK)  # one cipher context for every answer's MAC
        #: Requests answered, and requests dropped because they did not decode.
        self.answered = 0
        self.dropped = 0

    def _field62(self, terminal_id: str) -> str:
        tmk = self._tmks.get(terminal_id, self._default_tmk)
        field62 = self._keys_under.get(tmk)
        if field62 is None:
            keys = SignOnKeys(
                pik_under_tmk=encrypt_key_under(tmk, ECHO_TEST_PIK).hex().upper(),
                pik_kcv=key_check_value(ECHO_TEST_PIK, _KCV_LEN).hex().upper(),
                mak_under_tmk=encrypt_key_under(tmk, ECHO_TEST_MAK).hex().upper(),
                mak_kcv=key_check_value(ECHO_TEST_MAK, _KCV_LEN).hex().upper(),
            )
            field62 = keys.pik_under_tmk + keys.pik_kcv + keys.mak_under_tmk + keys.mak_kcv
            self._keys_under[tmk] = field62
        return field62

    def answer(self, payload: bytes) -> bytes | None:
        """The answer payload (no length prefix) to one request payload, or ``None`` to drop it."""
        try:
            request = PosFrame.parse(payload)
            fields = decode_pos_body(request.body)
            mti = answer_mti(fields["t"])
        except (WireError, KeyError, ValueError):
            self.dropped += 1
            return None
        answer: dict[str, str] = {key: fields[key] for key in ECHOED_FIELDS if key in fields}
        answer["t"] = mti
        self._rrn = self._rrn % 999_999_999_999 + 1
        answer["37"] = f"{self._rrn:012d}"
        answer["38"] = ECHO_AUTH_CODE
        answer["39"] = ResponseCode.APPROVED.value
        if "60" in fields and self._is_sign_on(fields["60"]):
            answer["62"] = self._field62(fields.get("41", ""))
        ordered = dict(sorted(answer.items(), key=lambda item: -1 if item[0] == "t" else int(item[0])))
        try:
            body = (
                encode_pos_body_with_mac(ordered, lambda block: mac_cup_ecb(self._mak, block))
                if "64" in fields
                else encode_pos_body(ordered)
            )
        except WireError:  # an echoed value the answer cannot carry (e.g. an odd request field 60)
            self.dropped += 1
            return None
        self.answered += 1
        return request.answer(body).to_bytes()

    @staticmethod
    def _is_sign_on(field60: str) -> bool:
        try:
            return Field60.parse(field60).network_code in _SIGN_ON_CODES
        except WireError:
            return False
