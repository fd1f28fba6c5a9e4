"""What ``Client`` and ``AsyncClient`` share: settings, the operations, the HTTP client's life."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Generic, TypeVar

import httpx

from imagegate.client._config import ClientConfig
from imagegate.client._operations import Operations

H = TypeVar("H", httpx.Client, httpx.AsyncClient)


class BaseClient(ABC, Generic[H]):
    """Settings come from the arguments, else ``IMAGEGATE_API_KEY``/``IMAGEGATE_BASE_URL``.

    Pass ``http_client`` to reuse your own httpx client (proxies, limits, event hooks); the SDK
    then leaves closing it to you.
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = None,
        max_retries: int | None = None,
        default_headers: Mapping[str, str] | None = None,
        http_client: H | None = None,
    ) -> None:
        self._ops = Operations(
            ClientConfig.resolve(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                default_headers=default_headers,
            )
        )
        self._owns_http = http_client is None
        self._http: H = self._new_http() if http_client is None else http_client

    @abstractmethod
    def _new_http(self) -> H: ...

    @property
    def base_url(self) -> str:
        """The gateway's root URL (without ``/v1``)."""
        return self._ops.config.root

    @property
    def max_retries(self) -> int:
        return self._ops.config.max_retries
