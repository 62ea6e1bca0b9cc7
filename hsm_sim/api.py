"""What those who start the HSM need to know (the supervisor, the pipelines): where its secrets come from.

The LMK file (``[hsm] lmk_file``) is opened by the HSM only. Its passphrase comes from the environment
variable ``PASSPHRASE_ENV`` when set — which the supervisor then passes to the HSM process alone and removes
from every other service's environment — and otherwise from a passphrase file (``PASSPHRASE_FILE_NAME``
beside the LMK file, mode 0600, created with a random passphrase at the first start): a convenience for local
TEST runs, documented in docs/security.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

#: Environment variable holding the LMK file's passphrase.
PASSPHRASE_ENV: Final = "ACQSIM_LMK_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
#: The passphrase file kept beside the LMK file when the environment names no passphrase.
PASSPHRASE_FILE_NAME: Final = "lmk.pass"  # noqa: S105 - a file name, not a secret


def passphrase_file_for(lmk_file: Path) -> Path:
    return lmk_file.with_name(PASSPHRASE_FILE_NAME)
