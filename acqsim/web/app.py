"""The web view's ASGI app (Starlette): one page, its ES modules, and four JSON/SSE endpoints.

    GET  /               the page (plain HTML + ES modules from ``static/``: no build step, works offline)
    GET  /api/setup      terminals, masked test cards, the "try it" examples, the lanes
    GET  /api/events     server-sent events: one ``hop`` event per message crossing a hop (from the traces)
    POST /api/run        {"scenario", "terminal", "card"} → the example's outcome, explained (English, Chinese)
    GET  /api/ledger     balances, holds, merchants and their settlement kind (一清 / 二清)
    GET  /api/postings   ?rrn=RRN: the postings (account, amount, debit/credit) of that transaction

The page gets card numbers masked only; a card is chosen by its index in the configuration.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from acqkit.config import AcqsimConfig
from acqsim.web.hops import BACKLOG, LANES, TraceFollower
from acqsim.web.ledger import ledger_snapshot, postings_of
from acqsim.web.scenarios import SCENARIOS, TryIt

log = logging.getLogger("acqsim.web")

STATIC_DIR: Final = Path(__file__).parent / "static"
#: How often the event stream looks at the traces for new lines.
POLL_INTERVAL_S: Final = 0.1
#: A comment line on an idle event stream this often keeps proxies from closing it.
KEEPALIVE_S: Final = 15.0
#: An example must finish within this (the lost-answer example takes the terminal's answer timeout, twice).
RUN_TIMEOUT_S: Final = 30.0
#: Field 37, the retrieval reference number the ledger keeps a transaction under.
RRN_LEN: Final = 12


@dataclasses.dataclass(slots=True, kw_only=True)
class WebContext:
    config: AcqsimConfig
    tryit: TryIt
    #: Set when the server stops: open event streams end at their next poll.
    closing: bool = False

    @property
    def trace_dir(self) -> Path:
        return self.config.trace_dir


def _sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def create_app(context: WebContext) -> Starlette:
    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-store"})

    async def setup(request: Request) -> Response:
        config = context.config
        return JSONResponse(
            {
                "lanes": list(LANES),
                "terminals": [{"id": t.terminal_id, "app_type": t.app_type} for t in config.terminals],
                "cards": context.tryit.cards(),
                "scenarios": [
                    {"name": s.name, "title_en": s.title_en, "title_zh": s.title_zh, "story_en": s.story_en}
                    for s in SCENARIOS.values()
                ],
            }
        )

    async def events(request: Request) -> Response:
        follower = TraceFollower(context.trace_dir)

        async def stream() -> AsyncIterator[str]:
            backlog = await anyio.to_thread.run_sync(follower.poll)
            for hop in backlog[-BACKLOG:]:
                yield _sse("hop", hop.as_json())
            yield _sse("ready", {"backlog": min(len(backlog), BACKLOG)})
            idle = 0.0
            while not context.closing:
                await anyio.sleep(POLL_INTERVAL_S)
                hops = await anyio.to_thread.run_sync(follower.poll)
                for hop in hops:
                    yield _sse("hop", hop.as_json())
                idle = 0.0 if hops else idle + POLL_INTERVAL_S
                if idle >= KEEPALIVE_S:
                    idle = 0.0
                    yield ": keep-alive\n\n"

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )

    async def run(request: Request) -> Response:
        try:
            body = await request.json()
            scenario, terminal, card = str(body["scenario"]), str(body["terminal"]), int(body.get("card", 0))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'send {"scenario": NAME, "terminal": ID, "card": INDEX}'}, status_code=400)
        try:
            with anyio.fail_after(RUN_TIMEOUT_S):
                result = await context.tryit.run(scenario, terminal, card)
        except ValueError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except TimeoutError:
            return JSONResponse({"error": f"the example did not finish within {RUN_TIMEOUT_S:.0f} s"}, status_code=504)
        except Exception as exc:  # the terminal refused (not signed on, bad keys): say so, keep serving
            log.warning("example %s at terminal %s failed: %s", scenario, terminal, type(exc).__name__)
            return JSONResponse({"error": f"{type(exc).__name__}: {exc}"}, status_code=502)
        return JSONResponse(result.as_json())

    async def ledger(request: Request) -> Response:
        snapshot = await anyio.to_thread.run_sync(ledger_snapshot, context.config)
        return JSONResponse(snapshot)

    async def postings(request: Request) -> Response:
        rrn = request.query_params.get("rrn", "")
        if not (len(rrn) == RRN_LEN and rrn.isalnum()):
            return JSONResponse({"error": "rrn must be the 12 characters of field 37"}, status_code=400)
        return JSONResponse(await anyio.to_thread.run_sync(postings_of, context.config, rrn))

    return Starlette(
        routes=[
            Route("/", index),
            Route("/api/setup", setup),
            Route("/api/events", events),
            Route("/api/run", run, methods=["POST"]),
            Route("/api/ledger", ledger),
            Route("/api/postings", postings),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]
    )
