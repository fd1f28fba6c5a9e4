"""Outbound HTTP: the httpx clients that talk to providers and fetch their images."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.request import getproxies

import httpx

from imagegate.outbound.transport import DEFAULT_LIMITS, Transport


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Client(httpx.AsyncClient):
    """httpx's client without a cookie jar: one client serves every API key's requests, so a
    cookie an upstream sets during one must not ride along on the next; and reading every
    answer for cookies cost a measurable share of a call.

    ``send`` goes straight to the transport when nothing of httpx's own layers would act
    (no auth, no redirects followed, no event hooks, no proxy): those layers and their
    wrapped streams were a tenth of the CPU of a synchronous request's provider call.
    """

    def __init__(
        self,
        timeout: httpx.Timeout,
        transport: httpx.AsyncBaseTransport,
        mounts: dict[str, httpx.AsyncBaseTransport | None],
    ) -> None:
        super().__init__(timeout=timeout, transport=transport, mounts=mounts)
        self._cookies = _NoCookies()  # where httpx keeps the jar its ``cookies`` property gives
        self._direct = None if mounts else transport

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        direct = self._direct
        layered = (
            stream
            or auth is not httpx.USE_CLIENT_DEFAULT
            or follow_redirects is not httpx.USE_CLIENT_DEFAULT
            or self.auth is not None
            or self.follow_redirects
            or any(self.event_hooks.values())
            or self.is_closed
        )
        if direct is None or layered:
            return await super().send(
                request, stream=stream, auth=auth, follow_redirects=follow_redirects
            )
        try:
            response = await direct.handle_async_request(request)
            response.request = request
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        except httpx.RequestError as exc:
            exc.request = request  # as httpx's own send attaches it
            raise
        return response


def client(total_s: float, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """A client on imagegate's transport, ``total_s`` for reads and writes and at most 10 s
    to connect; through the environment's proxies (``HTTPS_PROXY``, ``NO_PROXY``, ...) when
    it names any."""
    timeout = httpx.Timeout(total_s, connect=min(10.0, total_s))
    mounts: dict[str, httpx.AsyncBaseTransport | None] = {
        pattern: None if proxy is None else httpx.AsyncHTTPTransport(proxy=proxy, limits=limits)
        for pattern, proxy in environment_proxies().items()
    }
    return Client(timeout, Transport(limits), mounts)


def environment_proxies() -> dict[str, str | None]:
    """httpx's URL patterns for the environment's proxies (None: go direct), as httpx reads
    them itself for a client without a transport of its own, which this one has."""
    found = getproxies()
    patterns: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        if found.get(scheme):
            proxy = found[scheme]
            patterns[f"{scheme}://"] = proxy if "://" in proxy else f"http://{proxy}"
    for host in (h.strip() for h in found.get("no", "").split(",")):
        if host == "*":
            return {}
        if host:
            patterns[_direct_pattern(host)] = None
    return patterns


def _direct_pattern(host: str) -> str:
    """The pattern of a ``NO_PROXY`` entry: a domain covers its subdomains (curl's rule)."""
    if "://" in host:
        return host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return f"all://{host}" if host.lower() == "localhost" else f"all://*{host}"
    return f"all://[{host}]" if address.version == 6 else f"all://{host}"


__all__ = ["Client", "Transport", "client", "environment_proxies"]
