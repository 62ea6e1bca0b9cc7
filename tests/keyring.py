"""Key stores for tests that build a front-end by hand beside an in-process HSM under the TEST LMK: the key
ceremony's own steps (clear TEST components, A4) run against the HSM's sans-IO processor, so the front-end
gets cryptograms exactly as in a real start-up, and no test wraps a key outside the HSM."""

from __future__ import annotations

from acqkit.config import AcqsimConfig
from acqkit.keystore import SOURCE_COMPONENTS, KeyEntry, KeyStore, short_kcv, utc_now
from acqsim.provision import ceremony_keys, split_into_components
from frontend.registry import Registry
from hsm_sim.keys import DEFAULT_TEST_LMK, Lmk
from hsm_sim.processor import HsmProcessor


def key_store_for(config: AcqsimConfig, lmk: Lmk = DEFAULT_TEST_LMK) -> KeyStore:
    hsm = HsmProcessor(lmk, allow_clear_import=True)
    entries = []
    for key in ceremony_keys(config):
        first, second = split_into_components(key.clear)
        answer = hsm.handle(f"0000A42{key.key_type.code}U{first}{second}".encode("ascii")).decode("ascii")
        assert answer[6:8] == "00", answer[:8]
        cryptogram, kcv = answer[8:41], answer[41:]
        assert short_kcv(kcv) == key.kcv
        entries.append(
            KeyEntry(
                label=key.label,
                key_type=key.key_type.value,
                cryptogram=cryptogram,
                kcv=key.kcv,
                source=SOURCE_COMPONENTS,
                created=utc_now(),
            )
        )
    return KeyStore().with_entries(entries, lmk_kcv=lmk.check_value)


def registry_for(config: AcqsimConfig, lmk: Lmk = DEFAULT_TEST_LMK) -> Registry:
    """The front-end's registry for ``config``, its keys formed by an HSM under ``lmk``."""
    return Registry.from_key_store(config, key_store_for(config, lmk))
