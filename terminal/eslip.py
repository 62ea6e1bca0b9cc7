"""The MPOS e-slip (电子签购单): the receipt with the cardholder's signature drawn on the phone, sent
electronically — no printer.

The signature is a vector path: strokes of (x, y) points on a :data:`PAD_WIDTH` × :data:`PAD_HEIGHT` pad, as a
phone's touch events give them; it is stored as JSON and drawn as inline SVG. :func:`eslip_json` is what the
phone sends (the receipt's lines, the signature, and a SHA-256 over both, so a changed slip is seen);
:func:`eslip_html` is the page the cardholder opens, with a QR code (segno) linking to where the slip is kept.
The card number is masked as on every receipt; everything in the HTML is escaped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import json
from typing import Final

import segno

from terminal.receipt import ReceiptData
from wire.errors import AcqsimError

PAD_WIDTH: Final = 400
PAD_HEIGHT: Final = 150
#: Limits on what a phone may send as a signature: a real one has a few strokes of a few hundred points.
MAX_STROKES: Final = 32
MAX_POINTS: Final = 2_000
#: QR error correction level M (15 %): the link survives a smudged screen.
QR_ERROR_LEVEL: Final = "m"
QR_SCALE: Final = 3


class SignatureError(AcqsimError):
    """A signature path that is empty, too large, or has a point off the pad."""


Point = tuple[int, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Signature:
    strokes: tuple[tuple[Point, ...], ...]

    def __post_init__(self) -> None:
        points = sum(len(stroke) for stroke in self.strokes)
        if not self.strokes or not points or len(self.strokes) > MAX_STROKES or points > MAX_POINTS:
            raise SignatureError(f"a signature has 1–{MAX_STROKES} strokes and 1–{MAX_POINTS} points")
        for number, stroke in enumerate(self.strokes):
            for x, y in stroke:
                if not (0 <= x <= PAD_WIDTH and 0 <= y <= PAD_HEIGHT):
                    raise SignatureError(f"stroke {number} leaves the {PAD_WIDTH}×{PAD_HEIGHT} pad")

    @classmethod
    def from_json(cls, raw: object) -> Signature:
        if not isinstance(raw, list):
            raise SignatureError("a signature is a list of strokes")
        try:
            return cls(tuple(tuple((int(x), int(y)) for x, y in stroke) for stroke in raw))
        except (TypeError, ValueError):
            raise SignatureError("each point is a pair of integers") from None

    def to_json(self) -> list[list[list[int]]]:
        return [[[x, y] for x, y in stroke] for stroke in self.strokes]

    def svg(self) -> str:
        paths = "".join(
            "<path d='M" + " L".join(f"{x} {y}" for x, y in stroke) + "'/>" for stroke in self.strokes if stroke
        )
        return (
            f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {PAD_WIDTH} {PAD_HEIGHT}' width='{PAD_WIDTH}' "
            f"height='{PAD_HEIGHT}' fill='none' stroke='black' stroke-width='2'>{paths}</svg>"
        )


def _digest(lines: list[tuple[str, str]], signature: Signature) -> str:
    canonical = json.dumps({"lines": lines, "signature": signature.to_json()}, ensure_ascii=False, sort_keys=True)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def eslip_json(data: ReceiptData, signature: Signature, url: str) -> str:
    """What the phone sends: the receipt's lines (PAN masked), the signature path, the link, and the digest."""
    lines = [list(line) for line in data.lines]
    return json.dumps(
        {
            "receipt": lines,
            "signature": signature.to_json(),
            "url": url,
            "sha256": _digest([(k, v) for k, v in data.lines], signature),
        },
        ensure_ascii=False,
    )


def verify_eslip(text: str) -> bool:
    """Whether an e-slip's digest still matches its receipt and signature."""
    raw = json.loads(text)
    lines = [(str(k), str(v)) for k, v in raw["receipt"]]
    return bool(raw["sha256"] == _digest(lines, Signature.from_json(raw["signature"])))


def eslip_html(data: ReceiptData, signature: Signature, url: str) -> str:
    """The e-receipt page: the receipt, the drawn signature, and a QR code linking to ``url``."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in data.lines)
    qr = segno.make(url, error=QR_ERROR_LEVEL).svg_inline(scale=QR_SCALE)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>acqsim e-slip</title></head><body>"
        f"<h1>电子签购单 e-slip (acqsim TEST)</h1><table>{rows}</table>"
        f"<h2>持卡人签名 cardholder signature</h2>{signature.svg()}"
        f"<h2>{html.escape(url)}</h2>{qr}</body></html>"
    )
