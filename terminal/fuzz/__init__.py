"""A mutational fuzzer for the POS link: sans-IO mutators (:mod:`terminal.fuzz.mutators`) over frames the
terminal's own builders make (:mod:`terminal.fuzz.seeds`), and an async runner (:mod:`terminal.fuzz.runner`)."""
