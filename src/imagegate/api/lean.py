"""A pure-ASGI layer that answers the hottest routes before FastAPI's routing.

FastAPI resolves every request through its router, dependency solving and response classes;
on the status route that machinery cost about as much as the route's own work, and on a
synchronous create about a tenth of the request. Routes claimed here go straight to a plain
handler. Every other request, and every other method on the same paths, reaches the app
unchanged, so FastAPI still routes, documents and 405s them exactly as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from imagegate.api.errors import api_error_response, internal_error
from imagegate.errors import APIError

# Called with the scope, the rest of the path after the matched prefix, receive and send.
Handler = Callable[[Scope, str, Receive, Send], Awaitable[None]]
# (method, path, handler): a path ending in "/" is a prefix, any other an exact path.
Route = tuple[str, str, Handler]
# Computes the response (an ASGI app, sent once it is complete) from the scope, the rest of
# the path and receive.
Respond = Callable[[Scope, str, Receive], Awaitable[ASGIApp]]


class LeanRoutes:
    """Dispatch to the first route whose method and path match."""

    def __init__(self, app: ASGIApp, routes: Sequence[Route]) -> None:
        self.app = app
        self.routes = tuple(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Behind a root path, or with a newline (which no Starlette path parameter matches),
        # the app's own routing decides.
        if scope["type"] == "http" and not scope.get("root_path"):
            path: str = scope["path"]
            method = scope["method"]
            if "\n" not in path:
                for route_method, route, handler in self.routes:
                    if method == route_method and (
                        path == route or (route[-1] == "/" and path.startswith(route))
                    ):
                        await handler(scope, path[len(route) :], receive, send)
                        return
        await self.app(scope, receive, send)


def lean(respond: Respond) -> Handler:
    """A handler answering what ``respond`` computes, with the contract's envelope for an
    ``APIError`` and for anything unexpected, as FastAPI's exception handlers give."""

    async def handle(scope: Scope, rest: str, receive: Receive, send: Send) -> None:
        try:
            answer = await respond(scope, rest, receive)
        except APIError as exc:
            answer = api_error_response(exc)
        except Exception as exc:
            answer = internal_error(exc)
        await answer(scope, receive, send)

    return handle
