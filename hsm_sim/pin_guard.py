"""Limits on PIN verification, so that the HSM is no PIN-guessing oracle even for an allowed client.

Two limits, both in memory (a restart forgets them; the front-end's own per-day try counter is persistent):

- per account: at most ``MAX_PIN_FAILURES_PER_ACCOUNT`` failed verifications within ``PIN_FAILURE_WINDOW_S``;
  beyond that DC answers 29 (key function not permitted) until the oldest failure leaves the window. A
  correct PIN clears the account's failures. Accounts are held as keyed hashes (keyed BLAKE2b, a
  per-process random key; none computed while no account has failures), never as digits, and at most
  ``MAX_TRACKED_ACCOUNTS`` (the longest unused is forgotten first).
- per client: at most ``MAX_PIN_VERIFICATIONS_PER_S`` DC commands a second, as a token bucket with a burst of
  the same size; beyond that DC answers 17 (not authorised) at once, without decrypting anything. The server
  names every network client; an in-process caller (``client=""``: tests, benchmarks) has no rate limit.

The limits sit above the front-end's own (3 wrong PINs a day) so that a well-behaved front-end never meets
them: they stop a client that skips the front-end's counter or tries accounts in bulk.
"""

from __future__ import annotations

import collections
import hashlib
import secrets
from typing import Final

from hsm_sim.errors import ErrorCode

MAX_PIN_FAILURES_PER_ACCOUNT: Final = 10
PIN_FAILURE_WINDOW_S: Final = 3600.0
#: Twice the simulator's own DC capacity over TCP (about 12,500 a second with 16 callers on the 2-core development
#: machine since the HSM's callback path, docs/hsm.md; it was 4,000 when this was 5,000), so the front-end under
#: load is never throttled; a client beyond it is not a front-end. Guessing one card's PIN is stopped by the
#: per-account limit above whatever this rate is.
MAX_PIN_VERIFICATIONS_PER_S: Final = 25_000.0
MAX_TRACKED_ACCOUNTS: Final = 100_000
MAX_TRACKED_CLIENTS: Final = 10_000


class PinGuard:
    """Sans-IO: the caller passes a monotonic ``now`` (seconds)."""

    def __init__(
        self,
        *,
        max_failures: int = MAX_PIN_FAILURES_PER_ACCOUNT,
        window_s: float = PIN_FAILURE_WINDOW_S,
        rate_per_s: float = MAX_PIN_VERIFICATIONS_PER_S,
    ) -> None:
        self._max_failures = max_failures
        self._window_s = window_s
        self._rate = rate_per_s
        self._key = secrets.token_bytes(32)
        self._failures: collections.OrderedDict[bytes, collections.deque[float]] = collections.OrderedDict()
        self._buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def _account_key(self, account: str) -> bytes:
        return hashlib.blake2b(account.encode("ascii"), key=self._key, digest_size=16).digest()

    def admit(self, client: str, account: str | None, now: float) -> ErrorCode | None:
        """``None`` if this verification may go ahead, else the error code to answer (17 or 29)."""
        if client:
            tokens, last = self._buckets.pop(client, (self._rate, now))
            tokens = min(self._rate, tokens + (now - last) * self._rate)
            if tokens < 1.0:
                self._remember_client(client, tokens, now)
                return ErrorCode.NOT_AUTHORISED
            self._remember_client(client, tokens - 1.0, now)
        if account is None or not self._failures:
            return None
        times = self._failures.get(self._account_key(account))
        if times is None:
            return None
        while times and now - times[0] >= self._window_s:
            times.popleft()
        return ErrorCode.KEY_FUNCTION_NOT_PERMITTED if len(times) >= self._max_failures else None

    def record(self, account: str | None, *, failed: bool, now: float) -> None:
        """Count a verification's result for its account."""
        if account is None or (not failed and not self._failures):
            return
        key = self._account_key(account)
        if not failed:
            self._failures.pop(key, None)
            return
        times = self._failures.pop(key, None) or collections.deque()
        times.append(now)
        self._failures[key] = times
        while len(self._failures) > MAX_TRACKED_ACCOUNTS:
            self._failures.popitem(last=False)

    def _remember_client(self, client: str, tokens: float, now: float) -> None:
        self._buckets[client] = (tokens, now)
        while len(self._buckets) > MAX_TRACKED_CLIENTS:
            self._buckets.popitem(last=False)
