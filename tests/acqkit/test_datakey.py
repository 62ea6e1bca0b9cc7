"""The data key: an encrypted key file, keyed PAN fingerprints, sealed card data — and the journal keeping no
card number in clear on disk while it must hold one."""

from __future__ import annotations

import hashlib
import json
import stat
from pathlib import Path

import pytest

from acqkit.datakey import FINGERPRINT_MEMO, KEY_FILE, DataKey, DataKeyError
from frontend.journal import Journal
from tests.frontend.test_journal import _request, purchase_request

PAN = "6200001000000003"


def test_the_key_file_opens_only_with_its_passphrase_and_only_untampered(tmp_path: Path) -> None:
    key = DataKey.load_or_create(tmp_path, passphrase="correct horse")
    path = tmp_path / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = DataKey.load_or_create(tmp_path, passphrase="correct horse")
    assert again.fingerprint(PAN) == key.fingerprint(PAN)  # the same key, from the file
    with pytest.raises(DataKeyError, match="wrong passphrase"):
        DataKey.load_or_create(tmp_path, passphrase="wrong")
    document = json.loads(path.read_text())
    document["wrapped"] = "00" + document["wrapped"][2:]
    path.write_text(json.dumps(document))
    with pytest.raises(DataKeyError):
        DataKey.load_or_create(tmp_path, passphrase="correct horse")
    assert "correct horse" not in repr(key) and PAN not in path.read_text()


def test_fingerprints_are_keyed_and_sealed_data_opens_only_under_its_key() -> None:
    one, other = DataKey.ephemeral(), DataKey.ephemeral()
    assert one.fingerprint(PAN) != other.fingerprint(PAN)
    assert one.fingerprint(PAN) != hashlib.sha256(PAN.encode()).hexdigest()  # not a plain hash
    sealed = one.seal(PAN)
    assert PAN not in sealed and one.open(sealed) == PAN and one.seal(PAN) != sealed  # a fresh nonce each time
    with pytest.raises(DataKeyError):
        other.open(sealed)


def test_the_journal_keeps_no_clear_card_number_on_disk(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3", data_key=DataKey.ephemeral())
    request = purchase_request("000001", PAN)
    calls = [
        lambda j: _request(j, "000001"),
        lambda j: j.queue_reversal(request),
        lambda j: j.add_pin_failure(PAN, "20261203"),
    ]
    journal.run_batch(calls)
    ((_, pending),) = journal.unsettled()
    assert pending is not None and pending.pan == PAN  # the journal itself can read it back
    assert journal.pending_reversals()[0][1].pan == PAN and journal.pin_failures(PAN, "20261203") == 1
    journal.close()
    on_disk = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite3*"))
    assert PAN.encode() not in on_disk and hashlib.sha256(PAN.encode()).hexdigest().encode() not in on_disk


def test_remembered_fingerprints_equal_fresh_ones_and_the_memo_stays_bounded() -> None:
    raw = bytes(range(32))  # TEST key
    key, fresh = DataKey(raw), DataKey(raw)
    first = key.fingerprint(PAN)
    assert key.fingerprint(PAN) == first == fresh.fingerprint(PAN)  # a memo hit gives what the HMAC gives
    pans = [f"62000010{n:08d}" for n in range(FINGERPRINT_MEMO + 10)]
    prints = [key.fingerprint(pan) for pan in pans]
    assert len(key._fingerprints) <= FINGERPRINT_MEMO
    assert len(set(prints)) == len(pans)
    assert key.fingerprint(pans[0]) == DataKey(raw).fingerprint(pans[0])  # recomputed after the memo restarted
