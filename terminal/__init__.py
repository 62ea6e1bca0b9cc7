"""POS terminal emulator: messages, PIN blocks, MACs, STAN/batch, reversals, settlement, receipts."""
