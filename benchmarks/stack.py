"""The product's server stack plus one benchmark-only route, ``GET /bench/trivial``.

The trivial route is the baseline of the status-polling benchmark. It sits on the very same
stack as ``GET /v1/tasks/{id}``: uvicorn with httptools, the same server processes, the
product's pure-ASGI middleware and the same dispatch layer. The status route is served by
the lean layer ahead of FastAPI's routing (``imagegate.api.lean``), so the trivial route is
registered there too and answers a fixed small JSON body with no more work than a route can
do. The ratio between the two then isolates what the status route itself costs:
authentication, the store read and rendering. ``/healthz`` would not do: it counts pending
tasks in the database.

Run as ``python -m benchmarks.stack --port P --workers N``; it prepares the database the way
``imagegate serve`` does, then serves this app instead of the product's.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from imagegate.api.app import create_app, wrap
from imagegate.api.protocol import HttpProtocol
from imagegate.cli.server import _prepare
from imagegate.config import Settings

TRIVIAL_BODY = b'{"object":"bench","ok":true}'
_TRIVIAL_HEADERS = [
    (b"content-length", str(len(TRIVIAL_BODY)).encode()),
    (b"content-type", b"application/json"),
]


async def trivial(scope: Scope, rest: str, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _TRIVIAL_HEADERS})
    await send({"type": "http.response.body", "body": TRIVIAL_BODY})


def app_from_env() -> ASGIApp:
    """The product app as ``imagegate.api.app.asgi_app`` builds it, plus the trivial route."""
    settings = Settings()
    app = create_app(settings, run_worker=os.environ.get("IMAGEGATE_RUN_WORKER", "1") != "0")
    return wrap(app, settings, extra=[("GET", "/bench/trivial", trivial)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(_prepare(Settings()))
    uvicorn.run(
        "benchmarks.stack:app_from_env",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
        http=HttpProtocol,
    )


if __name__ == "__main__":
    main()
