"""The front-end's rules, one module per job (sans-IO: messages in, effects and answers out).

``answer`` builds and MACs the answer; ``checks`` classifies a request and reads its card data; ``sign_on``,
``settlement``, ``financial``, ``reversal`` and ``pin`` are the flows; ``ledger`` turns a request into the
ledger's; ``faults`` decides what a fault of our own or a ledger answer to a queued reversal leads to.
"""
