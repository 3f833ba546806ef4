"""The baseline: a bare Sanic app with one JSON endpoint, served the way `ehall serve` serves
(access log off, one process or as many workers as ehall gets), so bench/run.py can show what the
framework alone costs.

    .venv/bin/python bench/bare_app.py --port 8100 [--workers 2]
"""
from __future__ import annotations

import argparse

from sanic import Request, Sanic
from sanic.response import HTTPResponse, json
from sanic.worker.loader import AppLoader

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
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    # as `ehall serve` starts its workers: each process builds the app from the factory
    loader = AppLoader(factory=create_bare_app)
    app = loader.load()
    app.prepare(host=args.host, port=args.port, workers=args.workers, single_process=args.workers == 1,
                access_log=False, motd=False)
    if args.workers == 1:
        Sanic.serve_single(primary=app)
    else:
        Sanic.serve(primary=app, app_loader=loader)


if __name__ == "__main__":
    main()
