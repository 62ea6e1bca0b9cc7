"""The HSM's callback path (asyncio, plain TCP): each connection is a :class:`acqkit.frameprotocol.FrameSession`
whose read's commands are answered through :class:`hsm_sim.batch.BatchAnswerer` inside the read's callback, in
one write; a delayed answer is a connection timer (cancelled when the connection goes). A client that ends its side
of the connection (a half-close) still gets the delayed answers it is owed, then the end. The connection's idle and
send timeouts are the runtime's (``serve_frames``)."""

from __future__ import annotations

from acqkit.frameprotocol import FrameConnection, SessionFactory
from hsm_sim.batch import BatchAnswerer, Client, LateAnswer


class HsmSession:
    """One client connection's commands, answered as they are read."""

    __slots__ = ("_input_ended", "_owed_late", "answerer", "client", "conn")

    def __init__(self, conn: FrameConnection, answerer: BatchAnswerer, client: Client) -> None:
        self.conn, self.answerer, self.client = conn, answerer, client
        self._owed_late = 0  # delayed answers not sent yet
        self._input_ended = False

    def frames_received(self, frames: list[bytes]) -> None:
        batch = self.answerer.answer(frames, self.client)
        conn = self.conn
        for held in batch.late:
            self._owed_late += 1
            conn.call_later(held.delay_s, self._answer_late, held)
        if batch.answers:
            conn.send_many(batch.answers)
        if batch.close:
            conn.close()  # after the answers before the rule's command

    def input_ended(self) -> bool:
        """The client sent everything (a half-close): stay open for the delayed answers it is owed, if any."""
        self._input_ended = True
        return self._owed_late > 0

    def _answer_late(self, held: LateAnswer) -> None:
        self._owed_late -= 1
        self.conn.send(self.answerer.answer_late(held, self.client))
        if self._input_ended and not self._owed_late:
            self.conn.close()  # the last answer owed goes out first

    def connection_closed(self, error: BaseException | None) -> None:
        return None  # its delayed answers' timers went with it


def session_factory(answerer: BatchAnswerer) -> SessionFactory:
    """The sessions :func:`acqkit.frameprotocol.serve_frames` gives each connection (``None``: refused)."""

    def open_session(conn: FrameConnection) -> HsmSession | None:
        client = Client.of(None, conn.peer)  # plain TCP: no verified identity
        return HsmSession(conn, answerer, client) if answerer.admits(client) else None

    return open_session
