"""The body of one worker process in the token race test: its own interpreter, event loop, Redis
connection and WechatGateway, released at the same moment as its rivals by a multiprocessing barrier."""
from __future__ import annotations

import asyncio
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from typing import Any

from redis.asyncio import Redis

from backend.settings import Settings
from miniprogram_api.wechat import WechatGateway


def fetch_token_in_process(settings: dict[str, Any], start: Barrier, results: Queue) -> None:
    """Put the access token this process got on `results`, or "error: ..." if it got none."""
    try:
        results.put(asyncio.run(_fetch_token(settings, start)))
    except Exception as exc:  # the parent reports it; a traceback in a child is easy to miss
        results.put(f"error: {exc!r}")


async def _fetch_token(settings: dict[str, Any], start: Barrier) -> str:
    config = Settings(**settings)
    redis = Redis.from_url(config.redis_url)
    gateway = WechatGateway(config, redis)
    try:
        await redis.ping()  # connected before the start, so both processes race from the same line
        start.wait(timeout=30)
        return await gateway.access_token()
    finally:
        await gateway.close()
        await redis.aclose()
