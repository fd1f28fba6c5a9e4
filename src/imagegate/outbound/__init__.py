"""Outbound HTTP: the httpx clients that talk to providers and fetch their images."""

from __future__ import annotations

import httpx

from imagegate.outbound.transport import DEFAULT_LIMITS, Transport


def client(total_s: float, limits: httpx.Limits = DEFAULT_LIMITS) -> httpx.AsyncClient:
    """An httpx client on imagegate's transport, ``total_s`` for reads and writes and at most
    10 s to connect."""
    timeout = httpx.Timeout(total_s, connect=min(10.0, total_s))
    return httpx.AsyncClient(timeout=timeout, transport=Transport(limits))


__all__ = ["Transport", "client"]
