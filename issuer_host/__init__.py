"""An issuer's host on the switch link (docs/scheme.md): the card holder's bank behind the scheme switch.

- ``core``    sans-IO: a switch-link request → the ledger request and the PIN check; the ledger's answer → the
              switch-link answer
- ``server``  the thin shell: the issuer's own HSM (MACs under the zone's ZAK, PIN verified under the zone's
              ZPK with EC) and the issuer's own core ledger (``core_ledger``, through its client)
"""
