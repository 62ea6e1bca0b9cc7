"""The card scheme switch (PROTOCOL.md §10; docs/scheme.md): between acquirers and issuers.

- ``bins``     the BIN table: which issuer and card type a PAN belongs to
- ``fees``     the fee table: interchange (issuer fee) and the network fee, caps and rounding
- ``members``  the switch's members: institution ids, issuer endpoints, zone keys under the switch's LMK
- ``core``     sans-IO rules: admit and route a request, relay an answer, stand in for a silent issuer
- ``journal``  every leg's outcome (SQLite): what clearing is made from
- ``clearing`` end of day: one clearing file per member, with fees; the net positions
- ``server``   the thin anyio shell: acquirers in, issuers out, the switch's HSM for MACs and PIN translation
- ``client``   the switch link client an acquirer (and the switch, towards issuers) uses
"""
