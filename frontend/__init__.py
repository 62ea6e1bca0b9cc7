"""Acquirer front-end processor (POSP): unpack, check terminal/MAC/PIN, authorise at the ledger, answer."""
