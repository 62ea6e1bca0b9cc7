"""Zone keys and the scheme switch's HSM commands: CA then CC with the PROTOCOL.md §10 vector, EC at the issuer,
ZAK MACs and exports; in the processor and over loopback TCP with the client."""

from __future__ import annotations

import functools

import anyio
import pytest

from hsm_sim.client import HsmClient, HsmError, PinVerification
from hsm_sim.keys import DEFAULT_TEST_LMK, KeyType, Lmk, encrypt_under_lmk
from hsm_sim.processor import HsmProcessor
from hsm_sim.server import serve
from wire.paycrypto import MacAlgorithm, build_pin_block, decrypt_key_under, mac_x919, tdes_ecb_encrypt

LMK = DEFAULT_TEST_LMK
#: PROTOCOL.md §10: the §6 block under the TPK, then under the acquirer's ZPK, then under the issuer's ZPK.
PAN = "5544332211009966"
TPK = bytes.fromhex("0123456789ABCDEF1C587F1C13924FEF")
ZPK_ACQUIRER = bytes.fromhex("FEDCBA98765432100123456789ABCDEF")
ZPK_ISSUER = bytes.fromhex("1C587F1C13924FEF0123456789ABCDEF")
BLOCK_UNDER_TPK = "AB7374D801F4A390"
BLOCK_UNDER_ZPK_ACQUIRER = "C880AFA543562BE6"
BLOCK_UNDER_ZPK_ISSUER = "9C9BF9DAFCDD2D23"
ACCOUNT = PAN[-13:-1]
PVK = bytes.fromhex("7A3D5E1F2A4C6B8C9E0E1A2A3D4C5E6E")
ZMK = bytes.fromhex("4CA2161637D0133E5E151AEA45DA2A16")


def call(command: str, fields: str, lmk: Lmk = LMK) -> str:
    return HsmProcessor(lmk).handle(b"0042" + command.encode() + fields.encode()).decode("ascii")


def under(key_type: KeyType, key: bytes, lmk: Lmk = LMK) -> str:
    return encrypt_under_lmk(lmk, key_type, key)


def test_protocol_vector_ca_then_cc() -> None:
    step1 = call("CA", f"{under(KeyType.TPK, TPK)}{under(KeyType.ZPK, ZPK_ACQUIRER)}12{BLOCK_UNDER_TPK}0101{ACCOUNT}")
    assert step1 == f"0042CB0004{BLOCK_UNDER_ZPK_ACQUIRER}01"
    source, destination = under(KeyType.ZPK, ZPK_ACQUIRER), under(KeyType.ZPK, ZPK_ISSUER)
    step2 = call("CC", f"{source}{destination}12{BLOCK_UNDER_ZPK_ACQUIRER}0101{ACCOUNT}")
    assert step2 == f"0042CD0004{BLOCK_UNDER_ZPK_ISSUER}01"


def test_cc_at_another_hsm_with_its_own_lmk_gives_the_same_block() -> None:
    """The switch's HSM holds the zone keys under its own LMK: the block on the wire is the same."""
    switch_lmk = Lmk.from_hex("C1C1C1C1C1C1C1C1E0E0E0E0E0E0E0E0")
    keys = under(KeyType.ZPK, ZPK_ACQUIRER, switch_lmk) + under(KeyType.ZPK, ZPK_ISSUER, switch_lmk)
    answer = call("CC", f"{keys}12{BLOCK_UNDER_ZPK_ACQUIRER}0101{ACCOUNT}", switch_lmk)
    assert answer == f"0042CD0004{BLOCK_UNDER_ZPK_ISSUER}01"


def test_cc_source_key_type_is_checked_before_decrypting() -> None:
    # the source field holds a ZPK-typed token that was built under the TPK variant: parity fails → 10
    fields = f"{under(KeyType.TPK, TPK)}{under(KeyType.ZPK, ZPK_ISSUER)}12{BLOCK_UNDER_TPK}0101{ACCOUNT}"
    assert call("CC", fields)[:8] == "0042CD10"
    # a destination key of the wrong type: 11
    fields = f"{under(KeyType.ZPK, ZPK_ACQUIRER)}{under(KeyType.TPK, TPK)}12{BLOCK_UNDER_ZPK_ACQUIRER}0101{ACCOUNT}"
    assert call("CC", fields)[:8] == "0042CD11"


def test_cc_wrong_source_key_is_a_pin_block_error_and_short_fields_are_15() -> None:
    keys = under(KeyType.ZPK, ZPK_ISSUER) + under(KeyType.ZPK, ZPK_ACQUIRER)  # swapped: the block does not decode
    assert call("CC", f"{keys}12{BLOCK_UNDER_ZPK_ACQUIRER}0101{ACCOUNT}")[:8] == "0042CD20"
    assert call("CC", keys + "12")[:8] == "0042CD15"


def test_ec_verifies_a_pin_under_a_zpk_against_the_pvv() -> None:
    pan = "6200001000000003"
    zpk = under(KeyType.ZPK, ZPK_ISSUER)
    pvk = under(KeyType.PVK, PVK)
    good = tdes_ecb_encrypt(ZPK_ISSUER, build_pin_block("123456", pan)).hex().upper()
    bad = tdes_ecb_encrypt(ZPK_ISSUER, build_pin_block("654321", pan)).hex().upper()
    assert call("EC", f"{zpk}{pvk}{good}01{pan[-13:-1]}16308") == "0042ED00"
    assert call("EC", f"{zpk}{pvk}{bad}01{pan[-13:-1]}16308") == "0042ED01"
    tpk = under(KeyType.TPK, TPK)  # a terminal key is no zone key
    assert call("EC", f"{tpk}{pvk}{good}01{pan[-13:-1]}16308")[:8] == "0042ED10"


def test_zak_macs_and_travels_under_a_zmk_but_never_verifies_a_pin() -> None:
    zak = bytes.fromhex("0123456789ABCDEFFEDCBA9876543210")
    data = b"0100 switch link body"
    fields = f"00131{KeyType.ZAK.code}{under(KeyType.ZAK, zak)}{len(data):04X}"
    answer = HsmProcessor(LMK).handle(b"0042M6" + fields.encode() + data).decode("ascii")
    assert answer == "0042M700" + mac_x919(zak, data).hex().upper()
    exported = call("A0", f"1{KeyType.ZAK.code}U{KeyType.ZMK.code}{under(KeyType.ZMK, ZMK)}")
    assert exported[:8] == "0042A100" and exported[41] == "X"
    pvk = under(KeyType.PVK, PVK)
    assert call("EC", f"{under(KeyType.ZAK, zak)}{pvk}{'0' * 16}01{ACCOUNT}16308")[:8] == "0042ED10"


@pytest.mark.anyio
async def test_client_translates_twice_and_the_issuer_verifies() -> None:
    """Acquirer HSM CA, switch HSM CC, issuer HSM EC: three HSMs, each with its own LMK, over TCP."""
    lmks = {
        name: Lmk.from_hex(hex_)
        for name, hex_ in (
            ("acq", "0E1F2C3D4A5B6879E9D9C7B6A4948373"),
            ("sw", "C1C1C1C1C1C1C1C1E0E0E0E0E0E0E0E0"),
            ("iss", "D5D5D5D5D5D5D5D5F1F1F1F1F1F1F1F1"),
        )
    }
    pan = "6200001000000003"
    async with anyio.create_task_group() as tg:
        ports = {name: await tg.start(functools.partial(serve, "127.0.0.1", 0, lmk=lmk)) for name, lmk in lmks.items()}
        async with (
            await HsmClient.connect("127.0.0.1", ports["acq"]) as acquirer,
            await HsmClient.connect("127.0.0.1", ports["sw"]) as switch,
            await HsmClient.connect("127.0.0.1", ports["iss"]) as issuer,
        ):
            block = tdes_ecb_encrypt(TPK, build_pin_block("123456", pan))
            tpk = under(KeyType.TPK, TPK, lmks["acq"])
            zone_a = await acquirer.translate_pin(tpk, under(KeyType.ZPK, ZPK_ACQUIRER, lmks["acq"]), block, pan)
            zone_b = await switch.translate_pin_zone(
                under(KeyType.ZPK, ZPK_ACQUIRER, lmks["sw"]), under(KeyType.ZPK, ZPK_ISSUER, lmks["sw"]), zone_a, pan
            )
            assert zone_b == tdes_ecb_encrypt(ZPK_ISSUER, build_pin_block("123456", pan))
            verify = functools.partial(
                issuer.verify_interchange_pin_pvv,
                under(KeyType.ZPK, ZPK_ISSUER, lmks["iss"]),
                under(KeyType.PVK, PVK, lmks["iss"]),
                pan=pan,
                pvki="1",
                pvv="6308",
            )
            assert await verify(zone_b) is PinVerification.OK
            assert await verify(zone_a) is PinVerification.WRONG_PIN  # under the other zone's key
            with pytest.raises(HsmError) as info:  # the switch's LMK does not hold the acquirer's keys
                await switch.translate_pin_zone(
                    under(KeyType.ZPK, ZPK_ACQUIRER, lmks["acq"]),
                    under(KeyType.ZPK, ZPK_ISSUER, lmks["sw"]),
                    zone_a,
                    pan,
                )
            assert info.value.error_code == "10"
            zmk = under(KeyType.ZMK, ZMK, lmks["sw"])
            zak = await switch.generate_key(KeyType.ZAK, under_tmk=zmk)
            assert zak.under_tmk is not None
            assert decrypt_key_under(ZMK, bytes.fromhex(zak.under_tmk))  # exported under the ZMK
            mac = await switch.generate_mac(KeyType.ZAK, zak.under_lmk, b"body", MacAlgorithm.X9_19)
            assert await switch.verify_mac(KeyType.ZAK, zak.under_lmk, b"body", mac, MacAlgorithm.X9_19)
        tg.cancel_scope.cancel()
