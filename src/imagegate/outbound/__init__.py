"""Outbound HTTP: the httpx clients that talk to providers and fetch their images."""

from __future__ import annotations

import httpx

from imagegate.outbound.transport import DEFAULT_LIMITS, Transport


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing a response sets."""

    def extract_cookies(self, response: httpx.Response) -> None:
        return None


class Client(httpx.AsyncClient):
    """httpx's client without a cookie jar: one client serves every API key's requests, so a
    cookie an upstream sets during one must not ride along on the next; and reading every
    answer for cookies cost a measurable share of a call."""

    def __init__(self, timeout: httpx.Timeout, transport: httpx.AsyncBaseTransport) -> None:
        super().__init__(timeout=timeout, transport=transport)
        self._cookies = _NoCookies()  # where httpx keeps the jar its ``cookies`` property gives


def client(total_s: float, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """A client on imagegate's transport, ``total_s`` for reads and writes and at most 10 s
    to connect."""
    timeout = httpx.Timeout(total_s, connect=min(10.0, total_s))
    return Client(timeout=timeout, transport=Transport(limits))


__all__ = ["Client", "Transport", "client"]
