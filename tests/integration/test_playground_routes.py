"""The gateway serves the playground page and its assets, and nothing else under /static."""

from __future__ import annotations

import re

import httpx

from tests.support.gateway import Gateway


def test_root_serves_the_page_with_a_strict_content_security_policy(gateway: Gateway) -> None:
    response = httpx.get(gateway.base_url + "/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert response.headers["referrer-policy"] == "no-referrer"


def test_page_loads_nothing_from_other_servers(gateway: Gateway) -> None:
    page = httpx.get(gateway.base_url + "/").text
    assets = re.findall(r'(?:src|href)="(/[^"]*)"', page)
    assert sorted(assets) == ["/static/playground.css", "/static/playground.js"]
    for text in [page, *(httpx.get(gateway.base_url + path).text for path in assets)]:
        assert "http://" not in text
        assert "https://" not in text


def test_unknown_static_path_answers_the_error_envelope(gateway: Gateway) -> None:
    response = httpx.get(gateway.base_url + "/static/missing.js")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
