"""anyio client of the core ledger for the front-end: ``submit(LedgerRequest) -> LedgerAnswer``.

One TCP connection carries many requests at once (:class:`acqkit.multiplex.Link`): each answer is
matched to its request by the host-link match key (MTI class, 32, 37: the transaction itself; see
:func:`core_ledger.hostlink.match_key`).

Connecting, deadlines and error translation are :class:`acqkit.peerclient.PeerClient`'s. Errors (both
``LedgerError``, and the runtime's ``PeerUnavailable`` / ``PeerTimeout``, naming the ledger's address):

- :class:`LedgerUnavailable`: connect refused, or the connection was lost before the answer came. The
  next call opens a fresh connection (a restarted ledger is picked up again).
- :class:`LedgerTimeout`: no answer within the timeout. The ledger may or may not have posted: the caller
  sends a reversal.

An answer that does not decode ends the connection (the stream cannot be trusted): every caller waiting on it
gets ``LedgerUnavailable``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Final

from acqkit.peerclient import PeerClient, PeerError, PeerTimeout, PeerUnavailable
from core_ledger.api import LedgerAnswer, LedgerRequest
from core_ledger.hostlink import answer_from_fields, match_key, request_fields
from wire.codec import decode_host, encode_host
from wire.errors import FramingError, MessageDecodeError

#: Default time for one request, connecting included.
LEDGER_TIMEOUT_S: Final = 5.0
#: The name the ledger's TLS certificate must carry.
LEDGER_SERVICE_NAME: Final = "ledger"

MatchKey = tuple[str, str, str]


class LedgerError(Exception):
    """Base of the ledger client's errors."""


class LedgerUnavailable(LedgerError, PeerUnavailable):
    """Could not reach the ledger (refused, connection lost)."""


class LedgerTimeout(LedgerError, PeerTimeout):
    """No answer in time: the request may or may not have been posted."""


@dataclasses.dataclass(frozen=True, slots=True)
class HostFrame:
    """A request as the client sends it: the key its answer is matched by, and the host-link message (PROTOCOL.md
    §2). A caller that traces the message encodes it once (:func:`host_frame`) and hands it to the client."""

    key: MatchKey
    payload: bytes


def host_frame(request: LedgerRequest) -> HostFrame:
    fields = request_fields(request)
    return HostFrame(match_key(fields), encode_host(fields))


class LedgerClient(PeerClient[MatchKey, LedgerAnswer]):
    """With ``tls`` (a client context of :mod:`acqkit.tls`), the ledger must prove it is ``ledger``."""

    PEER = "ledger"
    SERVICE_NAME = LEDGER_SERVICE_NAME
    DEFAULT_TIMEOUT_S = LEDGER_TIMEOUT_S

    def decode_answer(self, payload: bytes) -> tuple[MatchKey, LedgerAnswer]:
        try:
            fields = decode_host(payload)
            answer = answer_from_fields(fields)
        except MessageDecodeError as exc:
            raise FramingError(f"undecodable answer from the ledger: {exc}", kind="undecodable") from None
        return match_key(fields), answer

    async def submit(
        self, request: LedgerRequest, *, timeout: float | None = None, frame: HostFrame | None = None
    ) -> LedgerAnswer:
        """Send ``request`` (``frame``: already encoded, :func:`host_frame`) and wait for its answer (``timeout``
        defaults to the client's).

        If a connection opened earlier turns out to be dead, the request is sent once more on a fresh one:
        that is safe because the ledger answers a repeated key with its first answer and never posts twice.
        """
        sent = frame or host_frame(request)
        [answer] = await self.exchange([(sent.key, sent.payload)], action="submit", timeout=timeout)
        return answer

    def submit_then(
        self,
        request: LedgerRequest,
        done: Callable[[LedgerAnswer | LedgerError | None], object],
        *,
        frame: HostFrame | None = None,
    ) -> bool:
        """:meth:`submit` for a caller stepped from the loop's callbacks (:meth:`PeerClient.exchange_then`):
        ``done`` gets the answer, or the :class:`LedgerTimeout` :meth:`submit` would raise, or ``None`` when the
        link was lost meanwhile (then run :meth:`submit`: the ledger answers a repeated key with its first answer).
        ``False``: not on a callback link now; use :meth:`submit`."""
        sent = frame or host_frame(request)

        def ended(result: list[LedgerAnswer] | PeerError | None) -> None:
            if result is None or isinstance(result, LedgerError):
                done(result)
            elif isinstance(result, PeerError):  # never: this client makes only ledger errors
                raise result
            else:
                done(result[0])

        return self.exchange_then([(sent.key, sent.payload)], ended, action="submit")

    def unavailable(self, action: str, reason: str) -> LedgerUnavailable:
        return LedgerUnavailable(self.PEER, self.address, action, reason)

    def timed_out(self, action: str) -> LedgerTimeout:
        return LedgerTimeout(self.PEER, self.address, action, "no answer in time")
