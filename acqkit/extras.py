"""Optional dependencies (the package's extras), with one clear error when a feature needs one that is missing.

trio       ACQSIM_BACKEND=trio                     pip install 'acqsim[trio]'
postgres   a ledger store at a postgresql:// URL  pip install 'acqsim[postgres]'
plot       acqsim load --plot                      pip install 'acqsim[plot]'
"""

from __future__ import annotations

import importlib.util


class MissingExtra(RuntimeError):
    """A feature needs an optional dependency that is not installed; the message says which extra brings it."""

    def __init__(self, module: str, extra: str, feature: str) -> None:
        super().__init__(f"{feature} needs {module}, which is not installed: pip install 'acqsim[{extra}]'")
        self.module = module
        self.extra = extra


def require(module: str, extra: str, feature: str) -> None:
    """Raise :class:`MissingExtra` unless ``module`` can be imported."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise MissingExtra(module, extra, feature)
