"""``acqsim config show [--json]``: the effective configuration, with the TEST terminals and cards."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from acqkit.config import CONFIG_HELP, load_config

BANNER = (
    "TEST MATERIAL — clear test keys and PINs are printed on purpose so that any client can transact "
    "with acqsim; never use them for anything real."
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show",), help="show the effective configuration")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    parser.add_argument("--json", action="store_true", help="print it as one JSON object")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.json:
        print(json.dumps({"note": BANNER, **config.to_dict()}, indent=2))
        return 0
    print(BANNER)
    print(f"data folder  {config.data_dir}")
    print(f"acquirer id  {config.acquirer_id}   currency {config.currency}")
    clear_import = "ENABLED (TEST configuration)" if config.hsm.allow_clear_import else "disabled"
    print(f"HSM          {config.hsm.listen}  LMK file {config.store_path(config.hsm.lmk_file)} (HSM only)")
    print(f"             clear-component key import {clear_import}; key store {config.key_store_path}")
    print(f"ledger       {config.ledger.listen}  store {config.store_path(config.ledger.db)}")
    if config.frontend.instances == 1:
        print(f"front-end    {config.frontend.listen}  journal {config.frontend_db()}")
    for number, endpoint in enumerate(config.frontend_endpoints() if config.frontend.instances > 1 else (), 1):
        print(f"front-end {number}  {endpoint}  journal {config.frontend_db(number)}  RRN digit {number}")
    print(f"NAC          {config.nac.listen}  status {config.nac.status}")
    for dst, members in config.nac.routes.items():
        print(f"  route {dst} → {', '.join(members)}")
    scheme = config.scheme
    if scheme is not None:  # acqsim up runs these too (docs/scheme.md)
        print(
            f"switch       {scheme.listen}  id {scheme.switch_id}  its HSM {scheme.hsm}"
            f"  on-us BINs {', '.join(scheme.on_us)}"
        )
        print(f"             acquirer zone: test ZMK {scheme.zmk}  ZAK {scheme.zak}  ZPK {scheme.zpk}")
        for issuer in scheme.issuers:
            bins = ", ".join([*(f"{b} debit" for b in issuer.debit_bins), *(f"{b} credit" for b in issuer.credit_bins)])
            print(f"{issuer.title}  {issuer.listen}  member {issuer.member_id}  BINs {bins}")
            print(f"             its HSM {issuer.hsm}  its ledger {issuer.ledger}  test PVK {issuer.pvk}")
            print(f"             zone: test ZMK {issuer.zmk}  ZAK {issuer.zak}  ZPK {issuer.zpk}")
    print(f"test PVK     {config.pvk}")
    print("terminals:")
    for t in config.terminals:
        print(f"  {t.terminal_id}  merchant {t.merchant_id}  app {t.app_type}  route {t.route}  TMK {t.tmk}")
    print("merchants:")
    for m in config.merchants:
        print(f"  {m.merchant_id}  {m.name}  {m.settlement}  fee {m.fee_bp} bp")
    print("cards:")
    for c in config.cards:
        print(
            f"  {c.pan:<19} exp {c.expiry}  PIN {c.pin}  PVKI {c.pvki} PVV {c.pvv}  "
            f"balance {c.balance / 100:>12,.2f}  {c.status:<7} {c.note}"
        )
    return 0
