"""Simulated HSM with a payShield-style host command protocol; keys under a local master key (LMK)."""
