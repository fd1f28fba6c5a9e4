"""Connection settings shared by both clients: where the gateway is, the key, timeouts."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from imagegate.client._flows import Send

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
# A synchronous generate may legitimately take a while before the server answers with a task.
DEFAULT_TIMEOUT = httpx.Timeout(120.0, connect=10.0)
DEFAULT_MAX_RETRIES = 2
USER_AGENT = "imagegate-python"


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Resolved settings; arguments win over ``IMAGEGATE_*`` environment variables."""

    root: str
    api_key: str | None
    timeout: httpx.Timeout
    max_retries: int
    headers: Mapping[str, str]

    @classmethod
    def resolve(
        cls,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float | httpx.Timeout | None,
        max_retries: int | None,
        default_headers: Mapping[str, str] | None,
    ) -> ClientConfig:
        key = api_key or os.environ.get("IMAGEGATE_API_KEY") or None
        url = base_url or os.environ.get("IMAGEGATE_BASE_URL") or DEFAULT_BASE_URL
        # Users coming from the OpenAI SDK write ``.../v1``; our paths already start with /v1.
        root = url.rstrip("/").removesuffix("/v1")
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        headers.update(default_headers or {})
        return cls(
            root=root,
            api_key=key,
            timeout=DEFAULT_TIMEOUT if timeout is None else httpx.Timeout(timeout),
            max_retries=DEFAULT_MAX_RETRIES if max_retries is None else max_retries,
            headers=headers,
        )

    def url(self, path_or_url: str) -> str:
        """An absolute URL as is; a path (such as a relative ``poll_url``) under the base URL."""
        if httpx.URL(path_or_url).is_absolute_url:
            return path_or_url
        return f"{self.root}/{path_or_url.lstrip('/')}"

    def send(
        self,
        method: str,
        path_or_url: str,
        *,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
        authorized: bool = True,
    ) -> Send:
        """A request step; ``authorized=False`` keeps the key away from other hosts."""
        merged = dict(self.headers)
        if authorized and self.api_key:
            merged["Authorization"] = f"Bearer {self.api_key}"
        merged.update(headers or {})
        return Send(method, self.url(path_or_url), self.timeout, merged, params, json)
