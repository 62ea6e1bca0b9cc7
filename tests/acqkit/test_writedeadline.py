"""WriteDeadline: a write outliving its deadline ends the scope as expired; waiting while disarmed never does;
a cancel from outside is not an expiry."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from acqkit.writedeadline import WriteDeadline, push_deadline

pytestmark = pytest.mark.anyio


async def test_a_write_past_its_deadline_expires_and_a_disarmed_wait_does_not() -> None:
    deadline = WriteDeadline(0.05)
    wrote = 0
    with deadline.scope:
        for _ in range(3):
            deadline.arm()
            await anyio.lowlevel.checkpoint()  # a write that completes at once
            deadline.disarm()
            wrote += 1
        with anyio.move_on_after(0.2):  # waiting for work, disarmed: longer than the timeout, no expiry
            await anyio.Event().wait()
        deadline.arm()
        await anyio.Event().wait()  # a write that never completes
    assert wrote == 3
    assert deadline.expired


async def test_a_cancel_from_outside_is_not_an_expiry() -> None:
    deadline = WriteDeadline(10)
    async with anyio.create_task_group() as tg:

        async def writer() -> None:
            with deadline.scope:
                deadline.arm()
                await anyio.Event().wait()

        tg.start_soon(writer)
        await anyio.wait_all_tasks_blocked()
        deadline.cancel()
    assert deadline.scope.cancelled_caught
    assert not deadline.expired


async def test_push_deadline_moves_a_deadline_only_once_it_is_less_than_the_timeout_ahead() -> None:
    scope = anyio.CancelScope()
    push_deadline(scope, 10, 1)  # no deadline yet: set to the far end
    first = scope.deadline
    assert 10 <= first - anyio.current_time() <= 11
    push_deadline(scope, 10, 1)  # still between 10 and 11 s ahead: left alone
    assert scope.deadline == first
    scope.deadline = anyio.current_time() + 9.5  # as if 1.5 s had passed since the push
    push_deadline(scope, 10, 1)
    assert 10 <= scope.deadline - anyio.current_time() <= 11
    scope.deadline = anyio.current_time() + 600  # too far ahead (a longer timeout's): brought back
    push_deadline(scope, 10, 1)
    assert 10 <= scope.deadline - anyio.current_time() <= 11
