"""acqsim: an ISO 8583 card-payment acquiring simulator.

The CLI (``acqsim.cli``), configuration and the supervisor that starts the five services live here; each
service lives in its own top-level package (``terminal``, ``nac``, ``frontend``, ``hsm_sim``,
``core_ledger``) over the shared wire formats in ``wire``.
"""

__version__ = "0.1.0"
