"""The product's server stack plus one benchmark-only route, ``GET /bench/trivial``.

The trivial route is the baseline of the status-polling benchmark. It sits on the very same
stack as ``GET /v1/tasks/{id}`` (uvicorn with httptools, the same server processes, the
product's pure-ASGI middleware, FastAPI routing) and answers a fixed small JSON body, so the
ratio between the two isolates what the status route itself costs: authentication, the store
read and rendering. ``/healthz`` would not do: it counts pending tasks in the database.

Run as ``python -m benchmarks.stack --port P --workers N``; it prepares the database the way
``imagegate serve`` does, then serves this app instead of the product's.
"""

from __future__ import annotations

import argparse
import asyncio
import os

import uvicorn
from starlette.responses import Response
from starlette.types import ASGIApp

from imagegate.api.app import create_app
from imagegate.api.middleware import BodyLimit, RequestId
from imagegate.cli.server import _prepare
from imagegate.config import Settings

TRIVIAL_BODY = b'{"object":"bench","ok":true}'


def app_from_env() -> ASGIApp:
    """The product app with the trivial route, wrapped as ``imagegate.api.app.asgi_app`` does."""
    settings = Settings()
    app = create_app(settings, run_worker=os.environ.get("IMAGEGATE_RUN_WORKER", "1") != "0")

    @app.get("/bench/trivial", include_in_schema=False)
    async def trivial() -> Response:
        return Response(TRIVIAL_BODY, media_type="application/json")

    return RequestId(BodyLimit(app, settings.max_body_bytes))


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
    )


if __name__ == "__main__":
    main()
