"""The merchant platform: the smart POS's merchant apps, behind one host (docs/smartpos.md).

The platform a smart-POS vendor or acquirer runs for its merchants: each app is one small module of rules
(``coupons``, ``vouchers`` for the group-buy platform, ``bookings``, ``notices``, ``members``, ``sales``), the
``core`` dispatches a merchant-link message to them, ``store`` keeps the records in SQLite (one decision, one
transaction), ``server`` is the thin shell, ``client`` how terminals and tills talk to it, ``analytics`` the
report behind ``acqsim merchant report``.
"""
