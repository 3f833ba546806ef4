"""Live feeds with real websocket clients: a snapshot on connect, then the events, through the broker
the server was built with (in-process on SQLite, Redis on PostgreSQL)."""
import asyncio
import json
import socket
from contextlib import AsyncExitStack

from websockets.asyncio.client import connect

from backend.kit.auth import Grant
from tests.factories import bearer, login_citizen, staff_tokens
from tests.rows import make_department
from tests.queueing.conftest import kiosk_ticket
from tests.sockets import closed_with, next_message, ws_url


class TestDisplayFeed:
    async def test_snapshot_then_calls_and_counts_with_zh_and_mn_text(self, client, server, queue_hall, kiosk,
                                                                      clerk):
        async with connect(ws_url(server, f"/ws/halls/{queue_hall.code}/display")) as board:
            snapshot = await next_message(board)
            assert snapshot["type"] == "snapshot" and snapshot["hall"] == queue_hall.code
            assert snapshot["waiting"] == {"A": 0, "B": 0} and snapshot["calls"] == []
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
            assert (await next_message(board, "queue.changed"))["waiting"] == {"A": 1, "B": 0}
            window = await queue_hall.window("A")
            await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
            call = await next_message(board, "ticket.called")
            assert call["number"] == "A001" and call["window"] == window.number
            assert "A001" in call["text"]["zh"] and window.number in call["text"]["zh"]
            assert any("\u1800" <= ch <= "\u18af" for ch in call["text"]["mn"]) and "A001" in call["text"]["mn"]
            assert (await next_message(board, "queue.changed"))["waiting"] == {"A": 0, "B": 0}

    async def test_a_reconnecting_board_gets_a_fresh_snapshot(self, client, server, queue_hall, kiosk, clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        await kiosk_ticket(client, kiosk, queue_hall.code, "B")
        window = await queue_hall.window("B")
        async with connect(ws_url(server, f"/ws/halls/{queue_hall.code}/display")) as board:
            await next_message(board, "snapshot")
        await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)   # while it was away
        async with connect(ws_url(server, f"/ws/halls/{queue_hall.code}/display")) as board:
            snapshot = await next_message(board)
            assert snapshot["waiting"] == {"A": 0, "B": 1}
            assert [c["number"] for c in snapshot["calls"]] == ["B001"]
            await board.send(json.dumps({"type": "refresh"}))
            assert (await next_message(board))["type"] == "snapshot"

    async def test_every_board_of_a_hall_hears_the_same_frames_in_the_order_they_happened(
            self, client, server, queue_hall, kiosk, clerk):
        """40 boards on one hall (the server serialises each message once for all of them and writes it
        to each at once): each hears, after its snapshot, exactly the same frames, byte for byte, in
        the order of the changes; one that asks for a refresh gets its snapshot and misses nothing."""
        url = ws_url(server, f"/ws/halls/{queue_hall.code}/display")
        async with AsyncExitStack() as stack:
            boards = [await stack.enter_async_context(connect(url)) for _ in range(40)]
            for board in boards:
                assert (await next_message(board))["type"] == "snapshot"
            await boards[0].send(json.dumps({"type": "refresh"}))
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
            await kiosk_ticket(client, kiosk, queue_hall.code, "B")
            window = await queue_hall.window("A")
            called = (await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)).json()
            await client.post(queue_hall.window_path(window, "recall"), headers=clerk, json={"ticket": called["id"]})
            heard = [[await asyncio.wait_for(board.recv(), 5) for _ in range(5)] for board in boards[1:]]
            refreshed = [json.loads(await asyncio.wait_for(boards[0].recv(), 5)) for _ in range(6)]
        assert all(frames == heard[0] for frames in heard)
        updates = [json.loads(frame) for frame in heard[0]]
        assert [(u["type"], u.get("waiting"), u.get("recall")) for u in updates] == [
            ("queue.changed", {"A": 1, "B": 0}, None), ("queue.changed", {"A": 1, "B": 1}, None),
            ("ticket.called", None, False), ("queue.changed", {"A": 0, "B": 1}, None), ("ticket.called", None, True)]
        assert [m for m in refreshed if m["type"] != "snapshot"] == updates
        assert [m["type"] for m in refreshed].count("snapshot") == 1

    async def test_a_board_that_stops_reading_holds_up_no_other_and_then_hears_the_latest_in_order(
            self, server, queue_hall):
        """A board on a dead mobile link stops reading. The messages written straight to its connection
        pile up in the server's buffer until 64 KiB; past that they wait in its queue, and past the
        queue's limit its oldest are dropped. Meanwhile another board hears every message, and the stalled
        one, once it reads again, hears what it still holds in the order it happened, down to the last
        (each message carries whole counts: the latest one is all a board needs)."""
        url = ws_url(server, f"/ws/halls/{queue_hall.code}/display")
        host, port = server.base_url.removeprefix("http://").split(":")
        # a small receive window, and a client that stops reading after one frame: the server's
        # writes back up after a few kilobytes instead of the kernel's megabytes
        stalled_socket = socket.socket()
        stalled_socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled_socket.setblocking(False)
        await asyncio.get_running_loop().sock_connect(stalled_socket, (host, int(port)))
        published = 24000
        async with connect(url, sock=stalled_socket, max_queue=1) as stalled, connect(url) as board:
            assert (await next_message(stalled))["type"] == "snapshot"
            assert (await next_message(board))["type"] == "snapshot"
            heard = []
            for batch in range(0, published, 100):   # the reading board keeps up with each batch
                for seq in range(batch + 1, batch + 101):
                    await server.rt.broker.publish(f"hall:{queue_hall.code}", {
                        "event": "queue.changed", "hall": queue_hall.code, "waiting": {"A": seq, "B": 0},
                        "seq": seq, "padding": "x" * 300})
                heard += [(await next_message(board, "queue.changed"))["seq"] for _ in range(100)]
            assert heard == list(range(1, published + 1))

            late = []
            while not late or late[-1] != published:
                late.append((await next_message(stalled, "queue.changed", timeout=10))["seq"])
        assert late == sorted(set(late)), "in the order published, none twice"
        assert len(late) < published, "the stalled board's oldest messages were dropped, not all kept"

    async def test_an_unknown_hall_is_closed_with_4404(self, server):
        async with connect(ws_url(server, "/ws/halls/159999999/display")) as board:
            error, code = await closed_with(board)
        assert error["code"] == "hall_not_found" and code == 4404


class TestTicketFeed:
    async def test_the_holder_sees_the_queue_move_and_the_call(self, client, capsys, server, queue_hall, kiosk,
                                                               clerk):
        await kiosk_ticket(client, kiosk, queue_hall.code, "A")
        tokens = await login_citizen(client, capsys)
        mine = (await client.post("/api/v1/tickets", headers=bearer(tokens),
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        window = await queue_hall.window("A")
        async with connect(ws_url(server, f"/ws/tickets/{mine['id']}"), additional_headers=bearer(tokens)) as feed:
            snapshot = await next_message(feed)
            assert snapshot["type"] == "snapshot" and snapshot["people_ahead"] == 1
            first = (await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)).json()
            moved = await next_message(feed, "ticket.updated")
            assert moved["people_ahead"] == 0 and moved["status"] == "waiting"
            await client.post(queue_hall.window_path(window, "skip"), headers=clerk, json={"ticket": first["id"]})
            await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
            called = await next_message(feed, "ticket.updated")
            while called["status"] != "called":
                called = await next_message(feed, "ticket.updated")
            assert called["window"] == window.number

    async def test_a_browser_authenticates_with_its_first_message(self, client, capsys, server, queue_hall):
        tokens = await login_citizen(client, capsys)
        mine = (await client.post("/api/v1/tickets", headers=bearer(tokens),
                                  json={"hall": queue_hall.code, "category": "B"})).json()
        async with connect(ws_url(server, f"/ws/tickets/{mine['id']}")) as feed:
            await feed.send(json.dumps({"type": "auth", "token": tokens["access_token"]}))
            snapshot = await next_message(feed)
        assert snapshot["type"] == "snapshot" and snapshot["number"] == "B001"

    async def test_without_a_token_or_with_a_bad_one_it_is_closed_with_4401(self, client, capsys, server,
                                                                            queue_hall):
        tokens = await login_citizen(client, capsys)
        mine = (await client.post("/api/v1/tickets", headers=bearer(tokens),
                                  json={"hall": queue_hall.code, "category": "A"})).json()
        async with connect(ws_url(server, f"/ws/tickets/{mine['id']}")) as feed:
            await feed.send(json.dumps({"type": "hello"}))
            error, code = await closed_with(feed)
        assert error["code"] == "unauthenticated" and code == 4401
        async with connect(ws_url(server, f"/ws/tickets/{mine['id']}"),
                           additional_headers={"Authorization": "Bearer not-a-token"}) as feed:
            error, code = await closed_with(feed)
        assert error["code"] == "token_invalid" and code == 4401
        await client.post("/api/v1/auth/logout", headers=bearer(tokens),
                          json={"refresh_token": tokens["refresh_token"]})
        async with connect(ws_url(server, f"/ws/tickets/{mine['id']}"), additional_headers=bearer(tokens)) as feed:
            error, code = await closed_with(feed)
        assert error["code"] == "session_ended" and code == 4401

    async def test_a_silent_socket_is_closed_after_the_auth_timeout(self, client, capsys, app_with, queue_hall):
        quick = await app_with(queueing={"socket_auth_seconds": 0.3})
        async with connect(ws_url(quick, "/ws/tickets/1")) as feed:
            error, code = await closed_with(feed)
        assert error["code"] == "unauthenticated" and code == 4401

    async def test_another_citizens_ticket_is_closed_with_4404(self, client, capsys, server, queue_hall):
        holder = await login_citizen(client, capsys)
        other = await login_citizen(client, capsys)
        ticket = (await client.post("/api/v1/tickets", headers=bearer(holder),
                                    json={"hall": queue_hall.code, "category": "A"})).json()
        async with connect(ws_url(server, f"/ws/tickets/{ticket['id']}"), additional_headers=bearer(other)) as feed:
            error, code = await closed_with(feed)
        assert error["code"] == "ticket_not_found" and code == 4404


class TestConsoleFeed:
    async def test_the_clerk_sees_the_window_its_ticket_and_its_queues(self, client, server, queue_hall, kiosk,
                                                                       clerk):
        window = await queue_hall.window("A")
        path = f"/ws/staff/halls/{queue_hall.code}/windows/{window.number}"
        async with connect(ws_url(server, path), additional_headers=clerk) as console:
            snapshot = await next_message(console)
            assert snapshot["type"] == "snapshot" and snapshot["window"]["number"] == window.number
            assert snapshot["current"] is None and snapshot["waiting"] == {"A": 0}
            await kiosk_ticket(client, kiosk, queue_hall.code, "A")
            assert (await next_message(console, "console"))["waiting"] == {"A": 1}
            await client.post(queue_hall.window_path(window, "call-next"), headers=clerk)
            update = await next_message(console, "console")
            while update["current"] is None:
                update = await next_message(console, "console")
            assert update["current"]["number"] == "A001" and update["current"]["status"] == "called"

    async def test_a_clerk_of_another_department_is_closed_with_4403(self, client, server, queue_hall):
        # two departments of the test's own hall (a grant's department must sit in its hall)
        bdc, ga = (await make_department(queue_hall.code)).code, (await make_department(queue_hall.code)).code
        window = await queue_hall.window("A", department=bdc)
        ga_clerk = bearer(await staff_tokens(client, Grant("window_clerk", hall=queue_hall.code,
                                                           department=ga)))
        path = f"/ws/staff/halls/{queue_hall.code}/windows/{window.number}"
        async with connect(ws_url(server, path), additional_headers=ga_clerk) as console:
            error, code = await closed_with(console)
        assert error["code"] == "out_of_scope" and code == 4403
