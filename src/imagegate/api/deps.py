"""Request-scoped helpers: the runtime, the caller's key id, absolute URLs."""

from __future__ import annotations

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
    base = rt.settings.public_url or str(request.base_url)
    return URLMaker(rt.storage, base.rstrip("/"), rt.settings.url_ttl)
