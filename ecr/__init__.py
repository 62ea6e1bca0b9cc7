"""The cash register (ECR, 收款机): rings up items, sends the amount to the card terminal beside it over the
ECR link (:mod:`wire.ecrlink`), or takes cash in register-only mode; records each sale with the merchant
platform for the analytics. ``register`` is the sans-IO till, ``cli`` is ``acqsim ecr``. See docs/ecr.md."""
