"""The routes the lean layer answers ahead of FastAPI give the same answers where it defers to
FastAPI's own routes (an app served under a root path), errors included."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from imagegate.api.app import create_app, wrap
from imagegate.cli.server import _prepare
from imagegate.config import Settings

KEY = "sk-lean-0123456789abcdefghijklmnopqrstuvwxyz"


@pytest.fixture
async def clients(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """(a client reaching the lean layer, one under a root path, where FastAPI routes)."""
    settings = Settings(data_dir=tmp_path, api_keys=[KEY], secret_key="lean-secret")
    await _prepare(settings)
    app = create_app(settings, run_worker=True)
    asgi = wrap(app, settings)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with app.router.lifespan_context(app):
        lean = httpx.AsyncClient(
            transport=httpx.ASGITransport(asgi), base_url="http://gw", headers=headers
        )
        routed = httpx.AsyncClient(
            transport=httpx.ASGITransport(asgi, root_path="/gw"),
            base_url="http://gw/gw",
            headers=headers,
        )
        async with lean, routed:
            yield lean, routed


async def test_create_and_status_answer_alike_on_both_paths(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    for client in clients:
        made = await client.post(
            "/v1/images/generations", json={"prompt": "a kite", "size": "64x64", "async": True}
        )
        assert made.status_code == 200, made.text
        assert set(made.json()) >= {"id", "task_id", "poll_url", "status", "data"}
        sync = await client.post("/v1/images/generations", json={"prompt": "a kite"})
        assert sync.status_code == 200, sync.text
        assert sync.json()["data"][0]["url"]
        status = await client.get(made.json()["poll_url"])
        assert status.status_code == 200
        assert status.json()["id"] == made.json()["id"]


@pytest.mark.parametrize(
    ("body", "headers", "status", "code"),
    [
        (b"{not json", {"Content-Type": "application/json"}, 400, "invalid_json"),
        (b'{"prompt": "x"}', {"Content-Type": "text/plain"}, 415, "unsupported_media_type"),
        (b'{"prompt": ""}', {"Content-Type": "application/json"}, 400, "invalid_value"),
        (b'{"prompt": "x"}', {"Authorization": "Bearer sk-wrong"}, 401, "invalid_api_key"),
    ],
)
async def test_create_errors_keep_the_envelope_on_both_paths(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
    body: bytes,
    headers: dict[str, str],
    status: int,
    code: str,
) -> None:
    answers = [
        await client.post("/v1/images/generations", content=body, headers=headers)
        for client in clients
    ]
    for answer in answers:
        assert answer.status_code == status, answer.text
        assert answer.json()["error"]["code"] == code
    assert answers[0].json() == answers[1].json()
