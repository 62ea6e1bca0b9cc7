"""Optional dependencies fail with one line that names the extra, and a bad backend setting is a usage error."""

from __future__ import annotations

import pytest

from acqkit.config import ConfigError
from acqkit.extras import MissingExtra, require
from acqkit.runner import BACKEND_ENV, backend_options
from acqsim.cli import main


def test_a_missing_module_names_its_extra() -> None:
    with pytest.raises(MissingExtra, match=r"pip install 'acqsim\[plot\]'") as caught:
        require("acqsim_no_such_module", "plot", "acqsim load --plot")
    assert caught.value.extra == "plot"
    require("anyio", "core", "anything")  # installed: no error


def test_backend_setting(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv(BACKEND_ENV, "trio")
    assert backend_options() == ("trio", {})
    monkeypatch.setenv(BACKEND_ENV, "curio")
    with pytest.raises(ConfigError, match="asyncio or trio"):
        backend_options()
    assert main(["load", "--in-process", "--duration", "1"]) == 2
    assert "ACQSIM_BACKEND='curio'" in capsys.readouterr().err
