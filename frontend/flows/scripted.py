"""A rules file's scripted answer at the front-end (``acqsim up --rules``), as a flow of the core.

The request is answered with the rule's response code and the echoed fields, MACed under the terminal's MAK
(through the HSM, like every answer) when the terminal has a session; nothing reaches the ledger.
"""

from __future__ import annotations

from frontend.effects import LoadSession
from frontend.flows.answer import Answer, Context, Flow, Reply, done
from frontend.flows.checks import is_request_mti
from frontend.records import Session
from wire.posmessage import PosMessage


def scripted(request: PosMessage, ctx: Context, code: str, rule: str) -> Flow:
    if not is_request_mti(request.mti):
        return Reply(body=None, note=f"MTI {request.mti} is not a request: dropped")
    answer = Answer(request, ctx.clock(), ctx.registry.acquirer_id).code(code)
    terminal = ctx.registry.terminals.get(request.get("41"))
    session: Session | None = (yield LoadSession(terminal.terminal_id)) if terminal is not None else None
    return (yield from done(answer, session, f"scripted by {rule}"))
