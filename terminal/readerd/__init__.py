"""The MPOS card reader as its own small service on a local socket (``acqsim reader``): docs/chip.md."""
