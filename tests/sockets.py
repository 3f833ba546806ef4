"""Helpers for tests that hold real websocket clients."""
from __future__ import annotations

import asyncio
import json

import pytest
from websockets.exceptions import ConnectionClosed

__all__ = ["ws_url", "next_message", "closed_with"]


def ws_url(server, path: str) -> str:
    """The websocket address of `path` on a running test server (anything with a base_url)."""
    return server.base_url.replace("http://", "ws://") + path


async def next_message(socket, kind: str | None = None, timeout: float = 5) -> dict:
    """The next message (of `kind`, skipping others)."""
    while True:
        message = json.loads(await asyncio.wait_for(socket.recv(), timeout))
        if kind is None or message["type"] == kind:
            return message


async def closed_with(socket, timeout: float = 5) -> tuple[dict, int]:
    """The error message a socket was sent before it was closed, and its close code."""
    error = json.loads(await asyncio.wait_for(socket.recv(), timeout))
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(socket.recv(), timeout)
    return error, socket.close_code
