"""A pure-ASGI layer that answers the hottest GET routes before FastAPI's routing.

FastAPI resolves every request through its router, dependency solving and response classes;
on the status route that machinery cost about as much as the route's own work. Paths claimed
here go straight to a plain handler. Every other request, and every other method on the same
paths, reaches the app unchanged, so FastAPI still routes, documents and 405s them exactly
as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

# Called with the scope, the rest of the path after the matched prefix, receive and send.
Handler = Callable[[Scope, str, Receive, Send], Awaitable[None]]


class LeanRoutes:
    """Dispatch ``GET <prefix><rest>`` to a handler; the first matching prefix wins."""

    def __init__(self, app: ASGIApp, routes: Sequence[tuple[str, Handler]]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a root path, or with a newline (which no Starlette path parameter matches),
        # the app's own routing decides.
        if scope["type"] == "http" and scope["method"] == "GET" and not scope.get("root_path"):
            path: str = scope["path"]
            if "\n" not in path:
                for prefix, handler in self.routes:
                    if path.startswith(prefix):
                        await handler(scope, path[len(prefix) :], receive, send)
                        return
        await self.app(scope, receive, send)
