"""A request whose client goes away is cancelled wherever it stands, also half-way into opening or
closing its transaction. The transaction must still end (rolled back, or committed whole) and give
its connection back: on SQLite one lock guards the only connection, and a lock left held stops every
later query of the process; on PostgreSQL a connection never given back drains the pool."""
import asyncio
import time
import uuid

from backend.kit.models import OutboxEvent
from backend.kit.uow import unit_of_work

CANCEL_POINTS = 60
LOOP_TURNS = 40


async def _change(rt, aggregate: str) -> None:
    async with unit_of_work(rt) as uow:
        await uow.record("test.first", aggregate)
        await uow.record("test.second", aggregate)


async def test_a_change_cancelled_at_any_moment_ends_whole_and_frees_the_database(server):
    rt = server.rt
    # how long one change takes here, so that the cancellations spread from before it opens its
    # transaction to after its commit
    took = []
    for _ in range(5):
        started = time.perf_counter()
        await _change(rt, f"test:{uuid.uuid4().hex}")
        took.append(time.perf_counter() - started)
    span = sorted(took)[2] * 1.5

    # cancelled after n turns of the event loop (the steps that need no I/O: taking the lock or the
    # pooled connection, setting up), then after moments spread over the whole change
    waits = [("turns", n) for n in range(LOOP_TURNS)] + [
        ("seconds", span * point / CANCEL_POINTS) for point in range(CANCEL_POINTS)]
    outcomes = set()
    for point, (unit, amount) in enumerate(waits):
        aggregate = f"test:{uuid.uuid4().hex}"
        change = asyncio.create_task(_change(rt, aggregate))
        if unit == "turns":
            for _ in range(amount):
                await asyncio.sleep(0)
        else:
            await asyncio.sleep(amount)
        change.cancel()
        try:
            await change
        except asyncio.CancelledError:
            pass
        async with asyncio.timeout(5):  # a held lock or a connection not given back shows as a hang
            written = await OutboxEvent.filter(aggregate=aggregate).count()
            assert written in (0, 2), f"half of the change was committed (cancelled after {amount} {unit})"
            outcomes.add(written)
            await _change(rt, aggregate + ":after")
            assert await OutboxEvent.filter(aggregate=aggregate + ":after").count() == 2
    # the cancellations fell both before the commit and after it
    assert outcomes == {0, 2}
