import asyncio

import pytest

from backend.kit.cache import AnswerCache


class Builder:
    def __init__(self):
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        await asyncio.sleep(0.01)
        return {"items": [self.calls]}


async def test_a_burst_of_the_same_request_builds_the_answer_once():
    cache, build = AnswerCache(ttl_seconds=60), Builder()
    answers = await asyncio.gather(*(cache.get(("halls",), build) for _ in range(20)))
    assert build.calls == 1
    assert all(a is answers[0] for a in answers)


async def test_different_keys_and_a_zero_ttl_build_again():
    cache, build = AnswerCache(ttl_seconds=60), Builder()
    await cache.get(("a",), build)
    await cache.get(("b",), build)
    assert build.calls == 2
    uncached, again = AnswerCache(ttl_seconds=0), Builder()
    await uncached.get(("a",), again)
    await uncached.get(("a",), again)
    assert again.calls == 2


async def test_a_failure_is_not_kept():
    cache, build = AnswerCache(ttl_seconds=60), Builder()

    async def failing():
        raise LookupError("no such hall")

    with pytest.raises(LookupError):
        await cache.get(("x",), failing)
    assert await cache.get(("x",), build) == {"items": [1]}


async def test_the_oldest_entries_go_first_past_the_limit():
    cache, build = AnswerCache(ttl_seconds=60, max_entries=2), Builder()
    for key in ("a", "b", "c"):
        await cache.get((key,), build)
    await cache.get(("a",), build)
    assert build.calls == 4


async def test_a_caller_that_does_not_join_builds_while_another_builds_and_keeps_its_answer():
    # a caller inside a transaction must not wait on another request's build (on SQLite that build may be
    # waiting for the caller's own transaction): here the first build never ends until told to
    cache, release = AnswerCache(ttl_seconds=60), asyncio.Event()

    async def stuck():
        await release.wait()
        return "first"

    async def own():
        return "own"

    first = asyncio.create_task(cache.get(("item",), stuck))
    await asyncio.sleep(0)
    assert await asyncio.wait_for(cache.get(("item",), own, join=False), timeout=1) == "own"
    release.set()
    assert await first == "first"
    assert await cache.get(("item",), own, join=False) == "first"    # the latest kept answer


async def test_forget_drops_one_key():
    cache, build = AnswerCache(ttl_seconds=60), Builder()
    await cache.get(("a",), build)
    await cache.get(("b",), build)
    cache.forget(("a",))
    await cache.get(("a",), build)
    await cache.get(("b",), build)
    assert build.calls == 3
