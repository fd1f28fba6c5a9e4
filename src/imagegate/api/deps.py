"""Request-scoped helpers: the runtime, the caller's key id, absolute URLs."""

from __future__ import annotations

from fastapi import Request

from imagegate.api.render import URLMaker
from imagegate.errors import AuthenticationFailed
from imagegate.runtime import Runtime


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


async def key_id(request: Request) -> str:
    """Authenticate ``Authorization: Bearer sk-...``; every failure is the same 401."""
    header = request.headers.get("authorization")
    if not header:
        raise AuthenticationFailed("Missing API key. Send it as 'Authorization: Bearer sk-...'.")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token.startswith("sk-") or len(token) > 256:
        raise AuthenticationFailed(
            "Malformed Authorization header. Expected 'Authorization: Bearer sk-...'."
        )
    found = await runtime(request).keys.key_id(token)
    if found is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    return found


def url_maker(request: Request) -> URLMaker:
    rt = runtime(request)
    base = rt.settings.public_url or str(request.base_url)
    return URLMaker(rt.storage, base.rstrip("/"), rt.settings.url_ttl)
