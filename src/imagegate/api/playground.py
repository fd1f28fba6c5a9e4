"""The playground: one static page at ``/`` that drives the public API from a browser.

No build step and nothing fetched from elsewhere: ``static/`` holds the HTML, one script and
one stylesheet. The page talks only to ``/v1`` with the key a person pastes into it.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import FileResponse
from starlette.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"

# Images may come from an S3 endpoint on another origin; everything else is this server.
# ``no-referrer`` keeps signed URLs and task ids out of other servers' logs.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data: blob: http: https:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
}


async def _index(_: Request) -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=_HEADERS)


def mount_playground(app: FastAPI) -> None:
    """Serve the page at ``GET /`` and its assets under ``/static/``."""
    app.add_route("/", _index, methods=["GET", "HEAD"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
