"""The ASGI application: routes, error envelope, middleware, and the runtime's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.types import ASGIApp

from imagegate import __version__
from imagegate.api import errors
from imagegate.api.lean import LeanRoutes, Route
from imagegate.api.middleware import BodyLimit, RequestId
from imagegate.api.playground import mount_playground
from imagegate.api.routes import files, health, images, models, tasks
from imagegate.api.status import status_routes
from imagegate.config import Settings
from imagegate.runtime import Runtime


def create_app(settings: Settings, *, run_worker: bool = True) -> FastAPI:
    runtime = Runtime.build(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start(run_worker=run_worker)
        try:
            yield
        finally:
            await runtime.close()

    app = FastAPI(
        title="imagegate",
        version=__version__,
        description="OpenAI-compatible image generation with a durable asynchronous task API.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    for module in (images, tasks, models, files, health):
        app.include_router(module.router)
    mount_playground(app)
    return app


def asgi_app(settings: Settings, *, run_worker: bool = True) -> ASGIApp:
    """The app behind the lean status routes, wrapped so that every response (even a 500 from
    Starlette's outermost layer) gets a request id."""
    return wrap(create_app(settings, run_worker=run_worker), settings)


def wrap(app: FastAPI, settings: Settings, extra: Sequence[Route] = ()) -> ASGIApp:
    """``app`` behind the product's middleware and lean routes (plus ``extra`` lean routes)."""
    runtime = app.state.runtime
    lean = LeanRoutes(app, [*status_routes(runtime), *images.create_routes(runtime), *extra])
    return RequestId(BodyLimit(lean, settings.max_body_bytes))
