"""Request-scoped helpers: the runtime, the caller's key id, absolute URLs."""

from __future__ import annotations

from typing import Any

from fastapi import Request

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
    """Signed URLs rooted at the configured public URL, else at the URL the client used."""
    base = rt.settings.public_url or _base_url(request)
    return URLMaker(rt.storage, base.rstrip("/"), rt.settings.url_ttl)


_BASES: dict[tuple[Any, ...], str] = {}
_BASES_MAX = 256  # the Host header is the client's: bound what it can make us keep


def _base_url(request: Request) -> str:
    """``request.base_url``, remembered by everything it is built from: building it cost as
    much as the rest of rendering a status."""
    scope = request.scope
    root = scope.get("app_root_path", scope.get("root_path", ""))
    key = (scope.get("scheme"), request.headers.get("host"), scope.get("server"), root)
    base = _BASES.get(key)
    if base is None:
        if len(_BASES) >= _BASES_MAX:
            _BASES.clear()
        base = _BASES[key] = str(request.base_url)
    return base
