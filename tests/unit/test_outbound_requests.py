"""The outbound client builds the same request httpx would, on its fast path and off it."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from imagegate.outbound import client


def _same(ours: httpx.Request, theirs: httpx.Request) -> None:
    assert ours.method == theirs.method
    assert ours.url == theirs.url
    assert sorted(ours.headers.multi_items()) == sorted(theirs.headers.multi_items())
    assert ours.content == theirs.content
    assert ours.extensions == theirs.extensions


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("POST", "http://up.example:8080/v1/images", {"json": {"prompt": "é", "n": 1}}),
        ("post", "https://up.example/v1?x=1", {"json": [1, 2], "headers": {"Authorization": "k"}}),
        ("POST", "http://up.example/", {"headers": {"content-type": "text/plain"}, "json": {}}),
        ("POST", "http://up.example/", {}),
        ("GET", "http://up.example/v1/tasks/abc", {"headers": {"Accept": "application/json"}}),
        ("DELETE", "http://[::1]:9/job", {"headers": {"user-agent": "x", "Host": "h"}}),
        ("GET", "http://up.example/", {"timeout": 3.0}),
        ("GET", "http://up.example/", {"timeout": httpx.Timeout(4.0, connect=1.0)}),
        # Off the fast path: httpx builds these itself.
        ("POST", "http://up.example/", {"content": b"raw"}),
        ("GET", "http://up.example/", {"params": {"a": "b"}}),
        ("GET", httpx.URL("http://up.example/u"), {"headers": [("X-A", "1"), ("X-A", "2")]}),
        ("GET", "relative/path", {}),
    ],
)
def test_requests_match_httpx_own(method: str, url: str, kwargs: dict[str, Any]) -> None:
    ours = client(30.0)
    theirs = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=10.0))
    for _ in range(2):  # the second time from the remembered URL
        built = ours.build_request(method, url, **kwargs)
        _same(built, theirs.build_request(method, url, **kwargs))


def test_a_non_ascii_header_value_is_refused_as_httpx_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        client(30.0).build_request("GET", "http://up.example/", headers={"X-Name": "é"})


def test_a_client_base_url_goes_through_httpx_merge() -> None:
    ours = client(30.0)
    ours.base_url = httpx.URL("http://up.example/api/")
    assert ours.build_request("GET", "v1/x").url == "http://up.example/api/v1/x"
