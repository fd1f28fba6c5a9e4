"""Request-scoped helpers: the runtime, the caller's key id, absolute URLs."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from starlette.types import Scope

from imagegate.api.render import URLMaker
from imagegate.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def key_id(request: Request) -> str:
    """Authenticate ``Authorization: Bearer sk-...``; every failure is the same 401."""
    return await runtime(request).keys.authenticate(request.headers.get("authorization"))


def url_maker(request: Request) -> URLMaker:
    return urls_for(runtime(request), request)


def urls_for(rt: Runtime, request: Request) -> URLMaker:
    """Signed URLs rooted at the configured public URL, else at the URL the client used.

    One maker per base URL, remembered by everything the base is built from: building the
    base and the maker cost as much as the rest of rendering a status."""
    scope = request.scope
    root = scope.get("app_root_path", scope.get("root_path", ""))
    # The storage object stands for its runtime; the cached maker keeps it alive, so its
    # identity is never reused while the entry exists.
    settings = rt.settings
    key: tuple[Any, ...] = (rt.storage, settings.public_url, settings.url_ttl)
    key += (scope.get("scheme"), _host(scope), scope.get("server"), root)
    maker = _MAKERS.get(key)
    if maker is None:
        if len(_MAKERS) >= _MAKERS_MAX:
            _MAKERS.clear()
        base = settings.public_url or str(request.base_url)
        maker = _MAKERS[key] = URLMaker(rt.storage, base.rstrip("/"), settings.url_ttl)
    return maker


_MAKERS: dict[tuple[Any, ...], URLMaker] = {}
_MAKERS_MAX = 256  # the Host header is the client's: bound what it can make us keep


def _host(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"host":
            return bytes(value)
    return None
