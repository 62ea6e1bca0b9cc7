"""The front-end process's way to the scheme switch (``acqsim frontend --scheme HOST:PORT``, docs/scheme.md):
the BIN table from the configuration's ``[scheme]``, the acquirer zone's keys (cryptograms under the acquirer's
LMK) from the key store, and the switch link they make."""

from __future__ import annotations

import dataclasses
import ssl

from acqkit.config import AcqsimConfig, ConfigError, Endpoint
from acqkit.keystore import KeyStore
from frontend.registry import ZONE_ZAK_LABEL, ZONE_ZPK_LABEL, RegistryError
from frontend.routing import SchemeRoute
from hsm_sim.client import HsmClient
from scheme.client import SWITCH_TLS_NAME, SwitchLinkClient, ZoneMac


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SwitchAccess:
    switch: Endpoint
    switch_id: str
    acquirer_id: str
    zak_under_lmk: str = dataclasses.field(repr=False)
    route: SchemeRoute

    def link(self, hsm: HsmClient, tls: ssl.SSLContext | None) -> SwitchLinkClient:
        """The switch link, MACed under the zone's ZAK at ``hsm``; mutual TLS (the switch checked by its name)
        when ``tls`` is given."""
        return SwitchLinkClient(
            self.switch.host,
            self.switch.port,
            own_id=self.acquirer_id,
            peer_id=self.switch_id,
            zone=ZoneMac(hsm, self.zak_under_lmk),
            tls=tls,
            server_name=SWITCH_TLS_NAME if tls is not None else None,
        )


def scheme_access(config: AcqsimConfig, keys: KeyStore, switch: Endpoint) -> SwitchAccess:
    """Raises :class:`ConfigError` without ``[scheme]`` and :class:`RegistryError` without the zone keys."""
    if config.scheme is None:
        raise ConfigError("--scheme needs the configuration's [scheme] table (the BIN table and the zone keys)")
    held = {label: keys.get(label) for label in (ZONE_ZAK_LABEL, ZONE_ZPK_LABEL)}
    missing = [label for label, entry in held.items() if entry is None]
    if missing:
        raise RegistryError(f"no {missing[0]} in the key store: run the key ceremony (acqsim up does)")
    zak, zpk = (entry.cryptogram for entry in held.values() if entry is not None)
    return SwitchAccess(
        switch=switch,
        switch_id=config.scheme.switch_id,
        acquirer_id=config.acquirer_id,
        zak_under_lmk=zak,
        route=SchemeRoute(on_us=config.scheme.on_us, scheme=config.scheme.off_us, zpk_under_lmk=zpk),
    )
