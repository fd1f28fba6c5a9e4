"""The gateway process starts on its embedded defaults and completes a task."""

from __future__ import annotations

import time

from tests.support.gateway import Gateway


def test_async_task_completes_on_embedded_defaults(gateway: Gateway) -> None:
    with gateway.client() as http:
        created = http.post(
            "/v1/images/generations", json={"prompt": "a red fox", "size": "64x64", "async": True}
        ).json()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            task = http.get(created["poll_url"]).json()
            if task["status"] == "completed":
                break
            time.sleep(0.1)
        assert task["status"] == "completed"
        assert http.get(task["data"][0]["url"]).headers["content-type"] == "image/png"
