"""CONTRACT §2, §3, §3b, §5, §6 against the real server process over loopback."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.support.gateway import Gateway


def wait_done(http: httpx.Client, path: str, timeout: float = 30) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = http.get(path).json()
        if body["status"] in ("completed", "failed"):
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path} did not finish")


def create_async(http: httpx.Client, **fields: Any) -> dict[str, Any]:
    response = http.post(
        "/v1/images/generations", json={"prompt": "a lighthouse", **fields, "async": True}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_async_create_answers_the_contract_shape(gateway: Gateway) -> None:
    with gateway.client() as http:
        body = create_async(http, n=3, size="64x64")
    assert set(body) >= {"created", "id", "task_id", "poll_url", "status", "data"}
    assert body["id"] == body["task_id"]
    assert body["poll_url"] == f"/v1/tasks/{body['id']}"
    assert body["status"] == "pending"
    assert body["data"] == [{"url": "", "revised_prompt": "a lighthouse"}] * 3


def test_task_ids_are_opaque_url_safe_and_random(gateway: Gateway) -> None:
    with gateway.client() as http:
        ids = {create_async(http, size="64x64")["id"] for _ in range(5)}
    assert len(ids) == 5
    for task_id in ids:
        assert task_id.startswith("igt_") and len(task_id) - 4 >= 26  # 32 base32 chars = 160 bits
        assert all(c.isalnum() or c == "_" for c in task_id)


def test_three_status_routes_answer_identically(gateway: Gateway) -> None:
    with gateway.client() as http:
        task_id = create_async(http, size="64x64")["id"]
        done = wait_done(http, f"/v1/tasks/{task_id}")
        bodies = [
            http.get(path).json()
            for path in (
                f"/v1/tasks/{task_id}",
                f"/v1/images/generations/{task_id}",
                f"/v1/images/{task_id}",
            )
        ]
    assert done["status"] == "completed"
    assert bodies[0] == bodies[1] == bodies[2]


def test_completed_task_urls_serve_images_of_the_requested_size(gateway: Gateway) -> None:
    with gateway.client() as http:
        task = create_async(http, n=2, size="96x64", output_format="webp")
        done = wait_done(http, task["poll_url"])
        assert done["model"] == "local" and done["updated"] >= done["created"]
        for item in done["data"]:
            assert item["revised_prompt"] == "a lighthouse"
            image = httpx.get(item["url"])  # signed URL: no Authorization needed
            assert image.headers["content-type"] == "image/webp"
            assert Image.open(io.BytesIO(image.content)).size == (96, 64)


def test_signed_urls_refuse_tampering(gateway: Gateway) -> None:
    with gateway.client() as http:
        done = wait_done(http, create_async(http, size="64x64")["poll_url"])
    url = done["data"][0]["url"]
    assert httpx.get(url).status_code == 200
    forged = url.replace("expires=", "expires=9")
    response = httpx.get(forged)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    unsigned = httpx.get(url.split("?")[0])
    assert unsigned.status_code == 404


def test_pending_answers_carry_no_store_and_retry_after(gateway: Gateway) -> None:
    with gateway.client() as http:
        task = create_async(http, size="64x64")
        first = http.get(task["poll_url"])
        done = wait_done(http, task["poll_url"])
        final = http.get(task["poll_url"])
    if first.json()["status"] in ("pending", "processing"):
        assert first.headers["cache-control"] == "no-store"
        assert first.headers["retry-after"] == "3"
    assert done["status"] == "completed"
    assert "retry-after" not in final.headers
    assert final.headers["etag"]


def test_terminal_snapshot_answers_304_to_its_etag(gateway: Gateway) -> None:
    with gateway.client() as http:
        task = create_async(http, size="64x64")
        wait_done(http, task["poll_url"])
        first = http.get(task["poll_url"])
        again = http.get(task["poll_url"], headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_sync_create_returns_openai_images_shape(gateway: Gateway) -> None:
    with gateway.client() as http:
        body = http.post(
            "/v1/images/generations", json={"prompt": "a teapot", "size": "64x64", "n": 2}
        ).json()
    assert set(body) == {"created", "data"}
    assert len(body["data"]) == 2
    assert all(item["url"].startswith("http") for item in body["data"])


def test_sync_create_with_b64_json_inlines_the_image(gateway: Gateway) -> None:
    with gateway.client() as http:
        body = http.post(
            "/v1/images/generations",
            json={"prompt": "a teapot", "size": "80x64", "response_format": "b64_json"},
        ).json()
    image = Image.open(io.BytesIO(base64.b64decode(body["data"][0]["b64_json"])))
    assert image.size == (80, 64)


def test_prefer_respond_async_header_makes_a_task(gateway: Gateway) -> None:
    with gateway.client() as http:
        body = http.post(
            "/v1/images/generations",
            json={"prompt": "a kite", "size": "64x64"},
            headers={"Prefer": "respond-async"},
        ).json()
    assert body["status"] == "pending" and body["poll_url"]


def test_another_keys_task_is_not_found(gateway: Gateway) -> None:
    with gateway.client() as mine, gateway.client(gateway.other_key) as theirs:
        task = create_async(mine, size="64x64")
        foreign = theirs.get(task["poll_url"])
        unknown = theirs.get("/v1/tasks/igt_" + "a" * 32)
    assert foreign.status_code == unknown.status_code == 404
    assert (
        foreign.json()
        == unknown.json()
        == {
            "error": {
                "message": "Task not found or no longer available.",
                "type": "invalid_request_error",
                "code": "async_task_not_found",
                "param": None,
            }
        }
    )


def test_list_shows_only_own_tasks_newest_first_with_cursor(gateway: Gateway) -> None:
    with gateway.client() as mine, gateway.client(gateway.other_key) as theirs:
        created = [create_async(mine, size="64x64")["id"] for _ in range(3)]
        create_async(theirs, size="64x64")
        first = mine.get("/v1/tasks", params={"limit": 2}).json()
        second = mine.get("/v1/tasks", params={"limit": 2, "after": first["next_cursor"]}).json()
        completed = mine.get("/v1/tasks", params={"status": "completed", "limit": 100}).json()
        their_ids = {t["id"] for t in theirs.get("/v1/tasks").json()["data"]}
    assert first["object"] == "list" and first["has_more"] is True
    listed = [t["id"] for t in first["data"] + second["data"]]
    assert listed[:3] == created[::-1]
    assert all(t["status"] == "completed" for t in completed["data"])
    assert not their_ids & set(created)


def test_list_rejects_bad_parameters(gateway: Gateway) -> None:
    with gateway.client() as http:
        for params in ({"limit": 0}, {"limit": 101}, {"after": "!!"}, {"status": "done"}):
            response = http.get("/v1/tasks", params=params)
            assert response.status_code == 400, params
            assert response.json()["error"]["type"] == "invalid_request_error"


def test_models_list_and_retrieve(gateway: Gateway) -> None:
    with gateway.client() as http:
        listing = http.get("/v1/models").json()
        one = http.get("/v1/models/local").json()
        missing = http.get("/v1/models/nope")
        ranked = http.get("/v1/models", params={"recommended_for": "image"}).json()
    assert listing["object"] == "list"
    assert one["id"] == "local" and one["object"] == "model" and one["owned_by"]
    assert one["imagegate"]["max_n"] == 10 and one["imagegate"]["sync"] is True
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert "success_rate_24h" in ranked["data"][0]["imagegate"]


def test_request_id_is_echoed_or_generated(gateway: Gateway) -> None:
    with gateway.client() as http:
        echoed = http.get("/v1/models", headers={"x-request-id": "abc-123"})
        generated = http.get("/v1/models", headers={"x-request-id": "bad id with spaces"})
        on_error = http.get("/nowhere")
    assert echoed.headers["x-request-id"] == "abc-123"
    assert generated.headers["x-request-id"] not in ("", "bad id with spaces")
    assert on_error.headers["x-request-id"]


def test_openapi_document_describes_the_routes(gateway: Gateway) -> None:
    doc = httpx.get(f"{gateway.base_url}/openapi.json").json()
    paths = doc["paths"]
    for path in (
        "/v1/images/generations",
        "/v1/tasks/{task_id}",
        "/v1/images/generations/{task_id}",
        "/v1/images/{task_id}",
        "/v1/tasks",
        "/v1/models",
        "/v1/models/{model_id}",
    ):
        assert path in paths, path
    assert "delete" in paths["/v1/tasks/{task_id}"]
    assert "404" in paths["/v1/tasks/{task_id}"]["get"]["responses"]


@pytest.mark.parametrize("size", ["64x64", "auto"])
def test_sizes_render_as_requested(gateway: Gateway, size: str) -> None:
    with gateway.client() as http:
        done = wait_done(http, create_async(http, size=size)["poll_url"])
        image = Image.open(io.BytesIO(httpx.get(done["data"][0]["url"]).content))
    assert image.size == ((64, 64) if size == "64x64" else (1024, 1024))
