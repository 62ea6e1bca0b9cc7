"""Exit codes every acqsim command uses, so that scripts can tell outcomes apart.

0  ok: done, approved, check passed
1  declined, or a check failed (the command ran and the answer is "no")
2  usage or configuration error (nothing was tried)
3  a peer is unreachable or did not answer in time
74 a service stopped itself because its store failed (sysexits' EX_IOERR): restart it, it reloads from the store
"""

from __future__ import annotations

from typing import Final

EXIT_OK: Final = 0
EXIT_DECLINED: Final = 1
EXIT_USAGE: Final = 2
EXIT_UNREACHABLE: Final = 3
EXIT_FAIL_STOP: Final = 74
