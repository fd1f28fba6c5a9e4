"""Import-string entry points for uvicorn (needed when it runs several server processes)."""

from __future__ import annotations

import os

from starlette.types import ASGIApp

from imagegate.api.app import asgi_app
from imagegate.config import Settings


def app_from_env() -> ASGIApp:
    """The app for this process, configured by ``IMAGEGATE_*`` variables."""
    run_worker = os.environ.get("IMAGEGATE_RUN_WORKER", "1") != "0"
    return asgi_app(Settings(), run_worker=run_worker)
