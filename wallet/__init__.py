"""The wallet host: the consumer's e-wallet (UnionPay QR, WeChat Pay, Alipay, simulated) for QR payments.

- ``model``   its records (accounts, payment codes, payments, orders) as frozen dataclasses
- ``codes``   one-time payment codes: prefixes, digits, lifetime
- ``core``    the rules, sans-IO: a wallet-link message and the time in, the answer and the changes out
- ``store``   SQLite: the changes of one decision commit in one transaction
- ``server``  the thin anyio shell on ``acqkit``; ``client`` how others talk to it; ``cli`` ``acqsim wallet``

See docs/qr.md.
"""
