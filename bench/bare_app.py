"""The baseline: a bare Sanic app with one JSON endpoint, served the way `ehall serve` serves
(single process, access log off), so bench/run.py can show what the framework alone costs.

    .venv/bin/python bench/bare_app.py --port 8100
"""
from __future__ import annotations

import argparse

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json

__all__ = ["create_bare_app"]


def create_bare_app() -> Sanic:
    app = Sanic("bench_bare")

    @app.get("/hello")
    async def hello(request: Request) -> HTTPResponse:
        return json({"status": "ok", "service": "bench"})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="bare Sanic baseline for bench/run.py")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    create_bare_app().run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
