"""The merchant link's request authentication, sans-IO: the checks a signed request must pass besides its MAC
(which only the HSM can verify: the merchant-link keys exist outside it only as cryptograms under its LMK).

:meth:`ReplayGuard.precheck` takes a request and the platform's clock and either refuses it (unsigned, or its
``TS`` outside ``AUTH_WINDOW_S`` of the clock) or returns what the HSM must check; once the MAC verified,
:meth:`ReplayGuard.admit` records the nonce, refusing one seen already from the same key. A nonce is
remembered for twice the window (a request older than the window is refused as stale anyway), so memory stays
bounded by the request rate times the window.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from wire.merchantlink import TAG_KEY_ID, TAG_MAC, TAG_NONCE, TAG_TIMESTAMP, AuthResult, signing_bytes
from wire.tlvlink import LinkMessage

#: How far a request's ``TS`` may be from the platform's clock, either way (clock skew plus transit).
AUTH_WINDOW_S: Final = 300.0


@dataclasses.dataclass(frozen=True, slots=True)
class Refusal:
    code: str  # an AuthResult
    reason: str  # for the log and the answer's TX: never the MAC or a key


@dataclasses.dataclass(frozen=True, slots=True)
class SignedRequest:
    key_id: str
    nonce: str
    data: bytes  # what the MAC covers
    mac: bytes


class ReplayGuard:
    def __init__(self, window: float = AUTH_WINDOW_S) -> None:
        self.window = window
        self._seen: dict[tuple[str, str], float] = {}  # (key id, nonce) → when first admitted; oldest first

    def precheck(self, message: LinkMessage, now: float) -> Refusal | SignedRequest:
        values = [message.get(tag) for tag in (TAG_KEY_ID, TAG_TIMESTAMP, TAG_NONCE, TAG_MAC)]
        key_id, stamp, nonce, mac = values
        if key_id is None or stamp is None or nonce is None or mac is None:
            return Refusal(AuthResult.UNSIGNED, "unsigned request: KI, TS, NC and HM are required")
        if abs(int(stamp) - now) > self.window:
            return Refusal(AuthResult.STALE, f"TS is {int(stamp) - now:+.0f} s from the platform's clock")
        if (key_id, nonce) in self._seen:
            return Refusal(AuthResult.REPLAYED, "nonce seen already")
        try:
            presented = bytes.fromhex(mac)
        except ValueError:
            return Refusal(AuthResult.BAD_MAC, "HM is not hex")
        return SignedRequest(key_id, nonce, signing_bytes(message), presented)

    def admit(self, signed: SignedRequest, now: float) -> Refusal | None:
        """The MAC verified: record the nonce (``None``), or refuse a replay that raced the first one."""
        self._forget_before(now - 2 * self.window)
        if (signed.key_id, signed.nonce) in self._seen:
            return Refusal(AuthResult.REPLAYED, "nonce seen already")
        self._seen[(signed.key_id, signed.nonce)] = now
        return None

    def _forget_before(self, horizon: float) -> None:
        while self._seen:
            entry, seen_at = next(iter(self._seen.items()))
            if seen_at >= horizon:
                break
            del self._seen[entry]

    def __len__(self) -> int:
        return len(self._seen)
