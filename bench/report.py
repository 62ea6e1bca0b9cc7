"""How a benchmark hands its figures to ``make bench``: one ``FIGURES {json}`` line, after its own text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

FIGURES_PREFIX: Final = "FIGURES "


def emit(figures: Mapping[str, float | int | str]) -> None:
    """Print the figures (rounded for reading) as the line ``bench/__main__.py`` collects into the table."""
    rounded = {k: round(v, 3) if isinstance(v, float) else v for k, v in figures.items()}
    print(FIGURES_PREFIX + json.dumps(rounded), flush=True)


def parse(output: str) -> dict[str, float | int | str]:
    """The figures a benchmark printed, or an empty mapping if it printed none."""
    for line in output.splitlines():
        if line.startswith(FIGURES_PREFIX):
            figures: dict[str, float | int | str] = json.loads(line[len(FIGURES_PREFIX) :])
            return figures
    return {}
