"""acqkit: the runtime every acqsim service runs on.

Layers run one way: ``wire`` (formats) ← ``acqkit`` (this package: TCP serving, framed connections,
multiplexed peer links, group commit, typed configuration, the service runner) ← the services (``hsm_sim``,
``core_ledger``, ``frontend``, ``nac``, ``terminal``) ← ``acqsim`` (CLI, supervisor, demo, load, chaos).
Nothing here imports a service or ``acqsim``.
"""
