"""A minimal canned-answer POS host (``acqsim echo-host``): what ``acqsim load`` can be pointed at to measure
the load generator alone, or a template for QA's own stand-ins. See ``core.py`` for what it answers."""
