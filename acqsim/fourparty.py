"""The four-party TEST world (docs/scheme.md): an acquirer, the scheme switch, and issuers behind it.

Parties and their TEST material (test keys and test cards only):

    acquirer  48009999  ACQSIM TEST ACQUIRER   its own HSM and LMK; issues the on-us BIN 620000
    switch    00010000  ACQSIM TEST SWITCH     its own HSM and LMK, the BIN table, the journal
    issuer B  63050000  ACQSIM TEST BANK B     its own HSM and LMK, its own core ledger: BINs 623050 (debit),
                                              625050 (credit)
    issuer C  64100000  ACQSIM TEST BANK C     BIN 621700 (debit); its host is down

Zone keys (clear TEST values, double length, odd parity): the acquirer zone's ZPK is PROTOCOL.md §10's
``FEDCBA98765432100123456789ABCDEF`` and issuer B's zone ZPK is §10's ``1C587F1C13924FEF0123456789ABCDEF``, so a
PIN travelling this world follows the §10 vector. Each party's HSM has its own LMK, random, sealed in a file of
the data folder and never seen outside the HSM; the key ceremony (:func:`_ceremony`) forms each zone's ZMK there
from two clear TEST components (A4: these HSMs allow clear import, as TEST configurations do) and imports the
zone keys under it (A6), so each party holds only cryptograms under its own LMK.

:func:`running_world` starts every service in-process on ephemeral loopback ports (the acquirer HSM, the
switch's HSM, issuer B's HSM, ledger and host; issuer C is a port nothing listens on, or a host that never
answers) and yields a :class:`World` whose :meth:`World.send` plays the acquirer's front-end.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import anyio
import anyio.abc

from acqkit.config import DEFAULT_ACQUIRER_ID, AcqsimConfig, CardFixture, Endpoint
from acqkit.schemeconfig import SchemeConfig, SchemeIssuerConfig
from acqkit.serving import PLAIN, Serving
from acqkit.tls import client_context, service_tls
from acqsim.pipeline import SchemeAccess
from acqsim.provision import split_into_components
from core_ledger.api import LedgerOp
from core_ledger.client import LedgerClient
from core_ledger.seed import CardSeed
from core_ledger.server import serve as serve_ledger
from core_ledger.setup import open_service, seed
from frontend.routing import SchemeRoute
from hsm_sim.client import HsmClient, KeyType
from hsm_sim.policy import ClientPolicy
from hsm_sim.server import serve_sealed as serve_hsm
from issuer_host.server import IssuerKeys, IssuerShell
from issuer_host.server import serve as serve_issuer
from scheme.bins import BinRange, BinTable
from scheme.client import ISSUER_TLS_NAME, SWITCH_TLS_NAME, OriginalData, SwitchLinkClient, SwitchRequest, ZoneMac
from scheme.core import StandInPolicy, SwitchCore
from scheme.journal import SwitchJournal
from scheme.members import Member
from scheme.server import SwitchShell
from scheme.server import serve as serve_switch
from wire.clearingfile import CardType
from wire.paycrypto import build_pin_block, tdes_ecb_encrypt, visa_pvv
from wire.switchlink import SwitchMessage
from wire.trace import TraceWriter

SWITCH_ID: Final = "00010000"
ACQUIRER_ID: Final = DEFAULT_ACQUIRER_ID  # the default configuration's field 32
ISSUER_B_ID: Final = "63050000"
ISSUER_C_ID: Final = "64100000"
HOST: Final = "127.0.0.1"

#: Clear TEST zone master keys (odd parity), one per zone: the zone keys travel under them.
ZMK_ACQUIRER: Final = bytes.fromhex("4CA2161637D0133E5E151AEA45DA2A16")
ZMK_ISSUER_B: Final = bytes.fromhex("0E1F2C3D4A5B6879E9D9C7B6A4948373")
ZMK_ISSUER_C: Final = bytes.fromhex("C1C1C1C1C1C1C1C1E0E0E0E0E0E0E0E0")

#: Clear TEST zone keys (ZPKs from PROTOCOL.md §10).
ZPK_ACQUIRER: Final = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
ZAK_ACQUIRER: Final = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
ZPK_ISSUER_B: Final = bytes.fromhex("1C587F1C13924FEF0123456789ABCDEF")
ZAK_ISSUER_B: Final = bytes.fromhex("89B07A34A1B3F47F4A5B6879E9D9C7B6")
ZPK_ISSUER_C: Final = bytes.fromhex("4CA2161637D0133E5E151AEA45DA2A16")
ZAK_ISSUER_C: Final = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
#: The acquirer's terminal PIN key (the §6 TPK) and issuer B's PVK.
TPK: Final = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
PVK_ISSUER_B: Final = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")

BINS: Final = (
    BinRange(prefix="620000", issuer_id=ACQUIRER_ID, card_type=CardType.DEBIT),
    BinRange(prefix="623050", issuer_id=ISSUER_B_ID, card_type=CardType.DEBIT),
    BinRange(prefix="625050", issuer_id=ISSUER_B_ID, card_type=CardType.CREDIT),
    BinRange(prefix="621700", issuer_id=ISSUER_C_ID, card_type=CardType.DEBIT),
)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class SchemeCard:
    pan: str
    pin: str
    expiry: str = "3012"
    balance: int = 0

    @property
    def pvv(self) -> str:
        return visa_pvv(PVK_ISSUER_B, self.pan, "1", self.pin)

    @property
    def track2(self) -> str:
        return f"{self.pan}={self.expiry}2011{self.pvv}00000"


#: Issuer B's TEST cards; C's card (its issuer is down).
DEBIT_B: Final = SchemeCard(pan="6230501000000014", pin="123456", balance=10_000_000)
CREDIT_B: Final = SchemeCard(pan="6250501000000019", pin="246810", balance=5_000_000)
#: Issuer B's card with 20.00 on it: what a stand-in approval it cannot cover does to its ledger.
LOW_B: Final = SchemeCard(pan="6230501000000022", pin="112233", balance=2_000)
CARD_C: Final = SchemeCard(pan="6217001000000011", pin="135790", balance=1_000_000)
#: Each party's HSM and the one identity its allow-list admits under TLS: the acquirer's front-end, the switch,
#: issuer B's host (an HSM serves one institution; another party's certificate is refused and logged).
HSM_CLIENTS: Final = {"acq": "frontend", "sw": SWITCH_TLS_NAME, "b": ISSUER_TLS_NAME}
TERMINAL_ID: Final = "10000001"
MERCHANT_ID: Final = "898100000000001"


@dataclasses.dataclass(slots=True)
class World:
    switch_port: int
    switch: SwitchShell
    acquirer: SwitchLinkClient
    acquirer_hsm: HsmClient
    #: The acquirer's keys under its own LMK: its terminal's TPK, its zone's ZPK and ZMK.
    acquirer_keys: dict[str, str]
    journal: SwitchJournal
    ledger_b: LedgerClient
    ledger_b_db: Path
    clock: dt.datetime
    #: Each party's HSM port ("acq", "sw", "b"): under TLS each admits only its own party (:data:`HSM_CLIENTS`).
    hsm_ports: dict[str, int] = dataclasses.field(default_factory=dict)
    _stan: itertools.count[int] = dataclasses.field(default_factory=lambda: itertools.count(1))

    def next_stan(self) -> str:
        return f"{next(self._stan):06d}"

    async def pin_block(self, card: SchemeCard) -> bytes:
        """The terminal's PIN block (under the TPK) translated by the acquirer's HSM to its zone ZPK (CA)."""
        under_tpk = tdes_ecb_encrypt(TPK, build_pin_block(card.pin, card.pan))
        keys = self.acquirer_keys
        return await self.acquirer_hsm.translate_pin(keys["tpk"], keys["zpk"], under_tpk, card.pan)

    async def acquirer_key(self, key_type: KeyType, clear: bytes) -> str:
        """A clear TEST key imported into the acquirer's HSM under its zone's ZMK (for tests of wrong keys)."""
        return await _import(self.acquirer_hsm, self.acquirer_keys["zmk"], ZMK_ACQUIRER, key_type, clear)

    def request(
        self,
        op: LedgerOp,
        card: SchemeCard,
        amount: int,
        *,
        stan: str | None = None,
        rrn: str | None = None,
        pin_block: bytes | None = None,
        original: OriginalData | None = None,
        auth_code: str | None = None,
    ) -> SwitchRequest:
        stan = stan or self.next_stan()
        return SwitchRequest(
            op=op,
            acquirer_id=ACQUIRER_ID,
            pan=card.pan,
            amount=amount,
            stan=stan,
            rrn=rrn or f"{self.clock:%m%d}{stan}00"[:12].rjust(12, "0"),
            terminal_id=TERMINAL_ID,
            merchant_id=MERCHANT_ID,
            local_time=f"{self.clock:%H%M%S}",
            local_date=f"{self.clock:%m%d}",
            transmission=f"{self.clock:%m%d%H%M%S}",
            mcc="5812",
            expiry=card.expiry,
            entry_mode="021",
            track2=card.track2,
            pin_block=pin_block,
            original=original,
            auth_code=auth_code,
        )

    async def send(self, request: SwitchRequest) -> SwitchMessage:
        return await self.acquirer.exchange(request.fields())


async def _silent(stream: anyio.abc.ByteStream) -> None:
    """An issuer host that takes requests and never answers (a hung issuer)."""
    async with stream:
        while await stream.receive():
            pass


async def _import(hsm: HsmClient, zmk_under_lmk: str, zmk: bytes, key_type: KeyType, clear: bytes) -> str:
    """A6: ``clear`` travels under the zone's ZMK and comes back under the HSM's LMK."""
    imported = await hsm.import_key(key_type, zmk_under_lmk, tdes_ecb_encrypt(zmk, clear).hex().upper())
    return imported.under_lmk


async def _ceremony(hsm: HsmClient, zmk: bytes, keys: dict[str, tuple[KeyType, bytes]]) -> dict[str, str]:
    """Form the zone's ZMK from two clear components (A4), then import each key under it (A6); the PVK, a key
    formed from components itself, by A4. Returns the name → the key under this HSM's LMK (and ``zmk``)."""
    formed = await hsm.form_key_from_components(KeyType.ZMK, split_into_components(zmk))
    out = {"zmk": formed.under_lmk}
    for name, (key_type, clear) in keys.items():
        if key_type is KeyType.PVK:
            out[name] = (await hsm.form_key_from_components(key_type, split_into_components(clear))).under_lmk
        else:
            out[name] = await _import(hsm, formed.under_lmk, zmk, key_type, clear)
    return out


def acquirer_access(switch_port: int, *, timeout: float = 5.0, tls_dir: Path | None = None) -> SchemeAccess:
    """The acquirer front-end's way to this world's switch (``running_pipeline(scheme=…)``): its zone keys put
    into the acquirer's HSM by the ceremony, the switch link, and the BIN table (620000 on-us; B's and C's BINs
    to the switch; any other BIN unknown). ``tls_dir``: the link is mutual TLS as ``frontend``, the switch
    checked by the name ``scheme``."""
    tls = client_context(tls_dir, "frontend") if tls_dir is not None else None

    async def access(hsm: HsmClient) -> tuple[SwitchLinkClient, SchemeRoute]:
        keys = await _ceremony(
            hsm, ZMK_ACQUIRER, {"zak": (KeyType.ZAK, ZAK_ACQUIRER), "zpk": (KeyType.ZPK, ZPK_ACQUIRER)}
        )
        link = SwitchLinkClient(
            HOST,
            switch_port,
            own_id=ACQUIRER_ID,
            peer_id=SWITCH_ID,
            zone=ZoneMac(hsm, keys["zak"]),
            timeout=timeout,
            tls=tls,
            server_name=SWITCH_TLS_NAME if tls is not None else None,
        )
        on_us = tuple(b.prefix for b in BINS if b.issuer_id == ACQUIRER_ID)
        off_us = tuple(b.prefix for b in BINS if b.issuer_id != ACQUIRER_ID)
        return link, SchemeRoute(on_us=on_us, scheme=off_us, zpk_under_lmk=keys["zpk"], mcc="5812")

    return access


def card_fixture(card: SchemeCard) -> CardFixture:
    """An off-us TEST card as a terminal presents it (track 2 with issuer B's PVV; its issuer's opening
    balance)."""
    return CardFixture(
        pan=card.pan,
        expiry=card.expiry,
        pin=card.pin,
        pvv=card.pvv,
        service_code="201",
        pvki="1",
        balance=card.balance,
        holder="TEST CARDHOLDER BANK B",
        note="off-us: issuer B behind the scheme switch",
    )


#: Where ``acqsim up`` runs the switch and issuer B by default (``--ephemeral-ports`` moves them).
SWITCH_PORT: Final = 5850
ISSUER_B_PORT: Final = 5860


def with_scheme(
    config: AcqsimConfig, *, stand_in_limit: int | None = 10_000, issuer_timeout: float = 2.0
) -> AcqsimConfig:
    """``config`` with this TEST world's ``[scheme]`` for ``acqsim up``: the switch and issuer B as processes
    (each with its own HSM; B with its own ledger), the acquirer's on-us BIN 620000, and B's two cards added to
    the ``[[cards]]`` a terminal presents. Issuer C is not run (its BIN is unknown to this switch)."""
    issuer_b = SchemeIssuerConfig(
        name="bank-b",
        member_id=ISSUER_B_ID,
        listen=Endpoint(host=HOST, port=ISSUER_B_PORT),
        hsm=Endpoint(host=HOST, port=ISSUER_B_PORT + 1),
        ledger=Endpoint(host=HOST, port=ISSUER_B_PORT + 2),
        zmk=ZMK_ISSUER_B.hex().upper(),
        zak=ZAK_ISSUER_B.hex().upper(),
        zpk=ZPK_ISSUER_B.hex().upper(),
        pvk=PVK_ISSUER_B.hex().upper(),
        debit_bins=tuple(b.prefix for b in BINS if b.issuer_id == ISSUER_B_ID and b.card_type is CardType.DEBIT),
        credit_bins=tuple(b.prefix for b in BINS if b.issuer_id == ISSUER_B_ID and b.card_type is CardType.CREDIT),
    )
    scheme = SchemeConfig(
        switch_id=SWITCH_ID,
        listen=Endpoint(host=HOST, port=SWITCH_PORT),
        hsm=Endpoint(host=HOST, port=SWITCH_PORT + 1),
        on_us=tuple(b.prefix for b in BINS if b.issuer_id == ACQUIRER_ID),
        zmk=ZMK_ACQUIRER.hex().upper(),
        zak=ZAK_ACQUIRER.hex().upper(),
        zpk=ZPK_ACQUIRER.hex().upper(),
        stand_in_limit=stand_in_limit,
        issuer_timeout_s=issuer_timeout,
        issuers=(issuer_b,),
    )
    known = {card.pan for card in config.cards}
    extra = tuple(card_fixture(c) for c in (DEBIT_B, CREDIT_B) if c.pan not in known)
    return dataclasses.replace(config, scheme=scheme, cards=(*config.cards, *extra))


async def _gated_proxy(target_port: int, gate: anyio.Event, client: anyio.abc.SocketStream) -> None:
    """Relay one connection to ``target_port``; answers wait until ``gate`` is set (an issuer whose answers are
    late: it has carried the request out, but the switch hears nothing in time)."""

    async def pipe(source: anyio.abc.ByteStream, sink: anyio.abc.ByteStream, *, gated: bool) -> None:
        async for chunk in source:
            if gated:
                await gate.wait()
            await sink.send(chunk)
        tg.cancel_scope.cancel()

    async with client, await anyio.connect_tcp(HOST, target_port) as upstream, anyio.create_task_group() as tg:
        tg.start_soon(functools.partial(pipe, client, upstream, gated=False))
        tg.start_soon(functools.partial(pipe, upstream, client, gated=True))


async def _down_until(target_port: int, up: anyio.Event, client: anyio.abc.SocketStream) -> None:
    """Drop the connection at once while ``up`` is not set (a host that is down); then relay it."""
    if not up.is_set():
        await client.aclose()
        return
    await _gated_proxy(target_port, up, client)


async def _serve_gated(
    listener: anyio.abc.Listener[anyio.abc.SocketStream], target_port: int, gate: anyio.Event
) -> None:
    async with listener:
        await listener.serve(functools.partial(_gated_proxy, target_port, gate))


async def _serve_down_until(
    listener: anyio.abc.Listener[anyio.abc.SocketStream], target_port: int, up: anyio.Event
) -> None:
    async with listener:
        await listener.serve(functools.partial(_down_until, target_port, up))


async def _serve_silently(listener: anyio.abc.Listener[anyio.abc.SocketStream]) -> None:
    async with listener:  # Listener.serve() does not close the listener when cancelled
        await listener.serve(_silent)


@asynccontextmanager
async def running_world(
    data_dir: Path,
    *,
    stand_in_limit: int | None = 10_000,
    issuer_c: str = "down",
    issuer_timeout: float = 1.0,
    clock: dt.datetime | None = None,
    issuer_b_gate: anyio.Event | None = None,
    issuer_b_up: anyio.Event | None = None,
    trace_dir: Path | None = None,
    tls_dir: Path | None = None,
) -> AsyncIterator[World]:
    """Every party, in-process. ``issuer_c``: ``"down"`` (nothing listens) or ``"silent"`` (never answers).
    ``issuer_b_gate``: issuer B's answers are held until it is set; ``issuer_b_up``: issuer B drops every
    connection until it is set (down, then back). ``tls_dir`` (``acqsim certs create``'s
    material): the switch link is mutual TLS on both legs, acquirer → switch and switch → issuer B, and each
    party's HSM serves TLS and admits only that party (:data:`HSM_CLIENTS`)."""
    switch_tls = service_tls(tls_dir, "scheme")
    issuer_tls = service_tls(tls_dir, "issuer")
    acquirer_tls = client_context(tls_dir, "frontend") if tls_dir is not None else None
    now = clock or dt.datetime.now(dt.UTC)
    traces = (TraceWriter(trace_dir, "issuer-b"), TraceWriter(trace_dir, "scheme"))
    async with anyio.create_task_group() as tg:
        hsm_tls = service_tls(tls_dir, "hsm")
        hsm_serving = Serving(server_tls=hsm_tls.server) if hsm_tls is not None else PLAIN
        hsm_port = {
            name: await tg.start(
                functools.partial(
                    serve_hsm,
                    HOST,
                    0,
                    lmk_file=data_dir / f"hsm-{name}.lmk",
                    allow_clear_import=True,
                    serving=hsm_serving,
                    allowed_clients=ClientPolicy(allowed={client: None}),
                )
            )
            for name, client in HSM_CLIENTS.items()
        }

        def hsm_client_tls(name: str) -> ssl.SSLContext | None:
            return client_context(tls_dir, HSM_CLIENTS[name]) if tls_dir is not None else None

        # issuer B: its own ledger with its cards, its own HSM, its host on the switch link
        db = data_dir / "issuer-b.sqlite3"
        service = open_service(str(db))
        seed(
            service.store,
            service.state,
            cards=[CardSeed(pan=c.pan, expiry=c.expiry, balance=c.balance) for c in (DEBIT_B, CREDIT_B, LOW_B)],
        )
        ledger_port = await tg.start(functools.partial(serve_ledger, HOST, 0, service=service))
        hsm_b = await HsmClient.connect(HOST, hsm_port["b"], tls=hsm_client_tls("b"))
        b_keys = await _ceremony(
            hsm_b,
            ZMK_ISSUER_B,
            {
                "zak": (KeyType.ZAK, ZAK_ISSUER_B),
                "zpk": (KeyType.ZPK, ZPK_ISSUER_B),
                "pvk": (KeyType.PVK, PVK_ISSUER_B),
            },
        )
        ledger_b = await LedgerClient.connect(HOST, ledger_port)
        issuer_shell = IssuerShell(
            issuer_id=ISSUER_B_ID,
            switch_id=SWITCH_ID,
            keys=IssuerKeys(
                zak=b_keys["zak"],
                zpk=b_keys["zpk"],
                pvk=b_keys["pvk"],
            ),
            hsm=hsm_b,
            ledger=ledger_b,
            trace=traces[0],
        )
        issuer_b_port = await tg.start(
            functools.partial(
                serve_issuer,
                HOST,
                0,
                shell=issuer_shell,
                serving=Serving(server_tls=issuer_tls.server) if issuer_tls is not None else PLAIN,
            )
        )
        if issuer_b_gate is not None:
            proxy = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
            tg.start_soon(_serve_gated, proxy, issuer_b_port, issuer_b_gate)
            issuer_b_port = proxy.extra(anyio.abc.SocketAttribute.local_port)
        if issuer_b_up is not None:
            downed = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
            tg.start_soon(_serve_down_until, downed, issuer_b_port, issuer_b_up)
            issuer_b_port = downed.extra(anyio.abc.SocketAttribute.local_port)
        # issuer C: a port nothing listens on, or a host that never answers
        listener = await anyio.create_tcp_listener(local_host=HOST, local_port=0)
        issuer_c_port = listener.extra(anyio.abc.SocketAttribute.local_port)
        if issuer_c == "down":
            await listener.aclose()
        else:
            tg.start_soon(_serve_silently, listener)
        # the switch
        hsm_sw = await HsmClient.connect(HOST, hsm_port["sw"], tls=hsm_client_tls("sw"))
        sw = {
            member: await _ceremony(hsm_sw, zmk, {"zak": (KeyType.ZAK, zak), "zpk": (KeyType.ZPK, zpk)})
            for member, zmk, zak, zpk in (
                (ACQUIRER_ID, ZMK_ACQUIRER, ZAK_ACQUIRER, ZPK_ACQUIRER),
                (ISSUER_B_ID, ZMK_ISSUER_B, ZAK_ISSUER_B, ZPK_ISSUER_B),
                (ISSUER_C_ID, ZMK_ISSUER_C, ZAK_ISSUER_C, ZPK_ISSUER_C),
            )
        }
        members = {
            ACQUIRER_ID: Member(
                institution_id=ACQUIRER_ID,
                name="ACQSIM TEST ACQUIRER",
                zak=sw[ACQUIRER_ID]["zak"],
                zpk=sw[ACQUIRER_ID]["zpk"],
            ),
            ISSUER_B_ID: Member(
                institution_id=ISSUER_B_ID,
                name="ACQSIM TEST BANK B",
                zak=sw[ISSUER_B_ID]["zak"],
                zpk=sw[ISSUER_B_ID]["zpk"],
                issuer_host=HOST,
                issuer_port=issuer_b_port,
            ),
            ISSUER_C_ID: Member(
                institution_id=ISSUER_C_ID,
                name="ACQSIM TEST BANK C",
                zak=sw[ISSUER_C_ID]["zak"],
                zpk=sw[ISSUER_C_ID]["zpk"],
                issuer_host=HOST,
                issuer_port=issuer_c_port,
            ),
        }
        core = SwitchCore(
            switch_id=SWITCH_ID,
            members=members,
            bins=BinTable(BINS),
            stand_in=StandInPolicy(approve_limit=stand_in_limit),
            clock=lambda: now,
        )
        journal = SwitchJournal(data_dir / "switch-journal.sqlite3")
        switch_shell = SwitchShell(
            core,
            journal,
            hsm_sw,
            issuer_timeout=issuer_timeout,
            trace=traces[1],
            issuer_tls=switch_tls.client if switch_tls is not None else None,
        )
        switch_serving = Serving(server_tls=switch_tls.server) if switch_tls is not None else PLAIN
        switch_port = await tg.start(
            functools.partial(serve_switch, HOST, 0, shell=switch_shell, serving=switch_serving)
        )
        hsm_acq = await HsmClient.connect(HOST, hsm_port["acq"], tls=hsm_client_tls("acq"))
        acq_keys = await _ceremony(
            hsm_acq,
            ZMK_ACQUIRER,
            {"zak": (KeyType.ZAK, ZAK_ACQUIRER), "zpk": (KeyType.ZPK, ZPK_ACQUIRER), "tpk": (KeyType.TPK, TPK)},
        )
        acquirer = SwitchLinkClient(
            HOST,
            switch_port,
            own_id=ACQUIRER_ID,
            peer_id=SWITCH_ID,
            zone=ZoneMac(hsm_acq, acq_keys["zak"]),
            timeout=issuer_timeout + 4.0,
            tls=acquirer_tls,
            server_name=SWITCH_TLS_NAME if acquirer_tls is not None else None,
        )
        world = World(
            switch_port=switch_port,
            switch=switch_shell,
            acquirer=acquirer,
            acquirer_hsm=hsm_acq,
            acquirer_keys=acq_keys,
            journal=journal,
            ledger_b=ledger_b,
            ledger_b_db=db,
            clock=now,
            hsm_ports=hsm_port,
        )
        try:
            yield world
        finally:
            with anyio.CancelScope(shield=True):
                for client in (acquirer, hsm_acq, hsm_sw, hsm_b, ledger_b):
                    await client.aclose()
                journal.close()
            tg.cancel_scope.cancel()
    service.store.close()
    for trace in traces:
        trace.close()
