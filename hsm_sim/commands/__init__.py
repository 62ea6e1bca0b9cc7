"""The HSM's host commands, one module per group; ``COMMANDS`` maps a command code to its handler.

Frame (PROTOCOL.md §4): ``LEN`` (2, big-endian) ‖ header (4 ASCII, echoed) ‖ command (2) ‖ fields. Answer:
header ‖ response code (command's second letter + 1) ‖ error code (2) ‖ fields (only when the error is 00,
except where noted). Keys are ``U`` + 32 hex under the LMK (see :mod:`hsm_sim.keys`).
An unknown command answers error 68; a field that is short, not of its character set, or followed by trailing
data answers 15 (the log line names the field and its offset, never its value). ``N`` = decimal
digits, ``H`` = hex characters, ``A`` = ASCII.

Layouts: :mod:`hsm_sim.commands.key_commands` (NC, A0, BU), :mod:`hsm_sim.commands.import_commands` (A6),
:mod:`hsm_sim.commands.component_commands` (A4),
:mod:`hsm_sim.commands.lmk_commands` (BW, only while an old LMK is loaded for a rotation),
:mod:`hsm_sim.commands.mac_commands` (M6, M8),
:mod:`hsm_sim.commands.pin_commands` (CA, CC, DC, EC), :mod:`hsm_sim.commands.emv_commands` (KQ),
:mod:`hsm_sim.commands.dukpt_commands` (G0, GQ, M2).
"""

from __future__ import annotations

from typing import Final

from hsm_sim.commands.common import (
    MAC_ALGORITHM_BY_NAME,
    MAC_ALGORITHM_CODES,
    PIN_FORMAT_BY_ENUM,
    PIN_FORMAT_CODES,
    Handler,
)
from hsm_sim.commands.component_commands import a4_form_key_from_components
from hsm_sim.commands.dukpt_commands import g0_translate_dukpt_pin, gq_verify_dukpt_pin_pvv, m2_decrypt_data
from hsm_sim.commands.emv_commands import kq_arqc_arpc
from hsm_sim.commands.import_commands import a6_import_key
from hsm_sim.commands.key_commands import a0_generate_key, bu_check_value, nc_diagnostics
from hsm_sim.commands.mac_commands import m6_generate_mac, m8_verify_mac
from hsm_sim.commands.pin_commands import (
    ca_translate_pin,
    cc_translate_pin_zone,
    dc_verify_pin_pvv,
    ec_verify_interchange_pin_pvv,
)

__all__ = [
    "COMMANDS",
    "MAC_ALGORITHM_BY_NAME",
    "MAC_ALGORITHM_CODES",
    "PIN_FORMAT_BY_ENUM",
    "PIN_FORMAT_CODES",
    "Handler",
]

COMMANDS: Final[dict[str, Handler]] = {
    "NC": nc_diagnostics,
    "A0": a0_generate_key,
    "BU": bu_check_value,
    "A6": a6_import_key,
    "A4": a4_form_key_from_components,
    "M6": m6_generate_mac,
    "M8": m8_verify_mac,
    "CA": ca_translate_pin,
    "CC": cc_translate_pin_zone,
    "DC": dc_verify_pin_pvv,
    "EC": ec_verify_interchange_pin_pvv,
    "KQ": kq_arqc_arpc,
    "G0": g0_translate_dukpt_pin,
    "GQ": gq_verify_dukpt_pin_pvv,
    "M2": m2_decrypt_data,
}
