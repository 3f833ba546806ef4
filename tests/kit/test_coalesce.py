import asyncio
import logging

from backend.kit.coalesce import Coalescer


class Counts:
    """Work that reads a value when it starts (as a hall's waiting counts are read) and takes a while."""

    def __init__(self, source: dict):
        self.source = source
        self.sent: list[int] = []

    async def __call__(self):
        seen = self.source["value"]
        await asyncio.sleep(0.02)
        self.sent.append(seen)


async def test_an_unhurried_change_runs_its_work_before_it_returns():
    hints, source = Coalescer(), {"value": 1}
    counts = Counts(source)
    await hints.run("hall", counts)
    source["value"] = 2
    await hints.run("hall", counts)
    assert counts.sent == [1, 2]


async def test_changes_made_during_a_run_share_one_more_run_that_sees_the_last_of_them():
    hints, source = Coalescer(), {"value": 0}
    counts = Counts(source)

    async def change(value: int):
        source["value"] = value
        await hints.run("hall", counts)

    await asyncio.gather(*(change(v) for v in range(1, 51)))
    await hints.close()
    # the first change's run, then one run for the 49 that came while it ran: it read the last value
    assert counts.sent == [1, 50]


async def test_keys_do_not_wait_for_each_other():
    hints = Coalescer()
    a, b = Counts({"value": "a"}), Counts({"value": "b"})
    await asyncio.gather(hints.run("hall:1", a), hints.run("hall:2", b))
    assert a.sent == ["a"] and b.sent == ["b"]


async def test_a_failing_run_is_logged_and_the_next_one_runs(caplog):
    hints, source = Coalescer(), {"value": 1}
    counts = Counts(source)

    async def broken():
        raise ConnectionError("redis went away")

    with caplog.at_level(logging.WARNING, logger="ehall.coalesce"):
        await hints.run("hall", broken)
    assert "coalesced work failed" in caplog.text
    await hints.run("hall", counts)
    assert counts.sent == [1]
