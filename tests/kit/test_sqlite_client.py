"""The SQLite engine's one connection is opened lazily by the process's first query, under the lock
that guards it. A first query cancelled while the connection opens (a health probe whose client gave
up on a busy machine) left Tortoise's lock held: `ehall serve` answered nothing ever after (CI saw
every test of tests/test_serve.py time out). These run on SQLite whatever the backend of the run:
the engine is ehall's own (backend/kit/sqlite.py), on a file of the test's."""
import asyncio

from backend.kit.sqlite import EhallSqliteClient


def _client(tmp_path) -> EhallSqliteClient:
    return EhallSqliteClient(str(tmp_path / "first-query.sqlite3"), connection_name="first-query")


async def _opening(client: EhallSqliteClient) -> None:
    # the first query holds the lock and waits for aiosqlite's thread to open the file
    for _ in range(1000):
        if client._lock.locked() and client._connection is None:
            return
        await asyncio.sleep(0)
    raise AssertionError("the first query never began to open the connection")


async def test_a_first_query_cancelled_while_the_connection_opens_leaves_the_database_usable(tmp_path):
    client = _client(tmp_path)
    first = asyncio.create_task(client.execute_query("SELECT 1"))
    await _opening(client)
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)

    assert not client._lock.locked()
    _, rows = await asyncio.wait_for(client.execute_query("SELECT 2 AS two"), timeout=10)
    assert [dict(row) for row in rows] == [{"two": 2}]
    await client.close()


async def test_the_query_after_a_cancelled_opening_uses_that_opening_and_opens_no_second_connection(tmp_path):
    client = _client(tmp_path)
    first = asyncio.create_task(client.execute_query("SELECT 1"))
    await _opening(client)
    opening = client._opening
    first.cancel()
    await asyncio.gather(first, return_exceptions=True)

    await asyncio.wait_for(client.execute_query("SELECT 1"), timeout=10)
    assert client._opening is opening and opening.done() and not opening.cancelled()
    connection = client._connection
    await client.execute_query("SELECT 1")
    assert client._connection is connection
    await client.close()
