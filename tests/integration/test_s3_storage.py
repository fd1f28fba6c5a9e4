"""S3Storage against a real SeaweedFS S3 server."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from imagegate.storage.s3 import S3Storage
from tests.support.seaweed import SeaweedS3

BUCKET = "imagegate-tests"


def make_storage(server: SeaweedS3, bucket: str = BUCKET, prefix: str = "") -> S3Storage:
    return S3Storage(
        bucket,
        prefix or f"run-{uuid.uuid4().hex[:8]}",
        endpoint_url=server.endpoint_url,
        region=server.region,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
    )


@pytest.fixture
async def storage(seaweed_s3: SeaweedS3) -> AsyncIterator[S3Storage]:
    store = make_storage(seaweed_s3)
    await store.start()
    yield store
    await store.aclose()


async def test_put_then_get_returns_the_same_bytes(storage: S3Storage) -> None:
    await storage.put("one.png", b"\x89PNG first", "image/png")
    assert await storage.get("one.png") == b"\x89PNG first"


async def test_put_overwrites_an_existing_object(storage: S3Storage) -> None:
    await storage.put("same.png", b"old", "image/png")
    await storage.put("same.png", b"new", "image/png")
    assert await storage.get("same.png") == b"new"


async def test_get_of_a_missing_key_raises_key_error(storage: S3Storage) -> None:
    with pytest.raises(KeyError):
        await storage.get("never-written.png")


async def test_delete_removes_objects_and_ignores_missing_ones(storage: S3Storage) -> None:
    await storage.put("a.png", b"a", "image/png")
    await storage.put("b.png", b"b", "image/png")
    await storage.delete(["a.png", "not-there.png"])
    with pytest.raises(KeyError):
        await storage.get("a.png")
    assert await storage.get("b.png") == b"b"


async def test_keys_with_slashes_live_under_the_prefix(
    storage: S3Storage, seaweed_s3: SeaweedS3
) -> None:
    await storage.put("tasks/abc/0.png", b"zero", "image/png")
    await storage.put("tasks/abc/1.png", b"one", "image/png")
    assert await storage.get("tasks/abc/1.png") == b"one"
    listed = seaweed_s3.client().list_objects_v2(Bucket=BUCKET, Prefix=storage.prefix)
    names = sorted(item["Key"] for item in listed["Contents"])
    assert names == [f"{storage.prefix}tasks/abc/0.png", f"{storage.prefix}tasks/abc/1.png"]


async def test_keys_that_could_escape_the_prefix_are_refused(storage: S3Storage) -> None:
    with pytest.raises(KeyError):
        await storage.put("../other/x.png", b"x", "image/png")


async def test_presigned_url_downloads_the_bytes_without_credentials(storage: S3Storage) -> None:
    await storage.put("dir/shared.webp", b"RIFF-webp-bytes", "image/webp")
    url = storage.url("dir/shared.webp", int(time.time()) + 600)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b"RIFF-webp-bytes"
    assert response.headers["content-type"] == "image/webp"


async def test_presigned_url_with_a_forged_signature_is_refused(storage: S3Storage) -> None:
    await storage.put("forged.png", b"secret", "image/png")
    url = storage.url("forged.png", int(time.time()) + 600)
    forged = url[:-4] + ("0000" if not url.endswith("0000") else "1111")
    async with httpx.AsyncClient() as client:
        assert (await client.get(forged)).status_code == 403


async def test_presigned_url_stops_working_after_it_expires(storage: S3Storage) -> None:
    await storage.put("short.png", b"brief", "image/png")
    # An expiry in the past still yields the shortest URL S3 allows (one second).
    url = storage.url("short.png", int(time.time()) - 60)
    await asyncio.sleep(2.5)
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 403


async def test_start_creates_a_missing_bucket_and_is_idempotent(seaweed_s3: SeaweedS3) -> None:
    bucket = f"fresh-{uuid.uuid4().hex[:12]}"
    store = make_storage(seaweed_s3, bucket=bucket)
    await store.start()
    await store.start()
    await store.put("x.png", b"x", "image/png")
    await store.aclose()
    names = [b["Name"] for b in seaweed_s3.client().list_buckets()["Buckets"]]
    assert bucket in names


async def test_first_write_starts_the_client_when_start_was_not_called(
    seaweed_s3: SeaweedS3,
) -> None:
    store = make_storage(seaweed_s3)
    await store.put("lazy.png", b"lazy", "image/png")
    assert await store.get("lazy.png") == b"lazy"
    await store.aclose()


async def test_credentials_fall_back_to_the_standard_aws_variables(
    seaweed_s3: SeaweedS3, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed_s3.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed_s3.secret_access_key)
    store = S3Storage(BUCKET, "from-env", endpoint_url=seaweed_s3.endpoint_url)
    await store.put("env.png", b"env", "image/png")
    async with httpx.AsyncClient() as client:
        response = await client.get(store.url("env.png", int(time.time()) + 60))
    await store.aclose()
    assert response.content == b"env"
