"""A gateway process configured for S3 keeps its results in the bucket and hands out S3 URLs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import httpx

from tests.support.gateway import Gateway
from tests.support.seaweed import SeaweedS3


def test_completed_task_points_at_a_presigned_url_in_the_bucket(
    gateway_factory: Callable[..., Gateway], seaweed_s3: SeaweedS3
) -> None:
    bucket = f"gateway-{uuid.uuid4().hex[:10]}"  # missing: the gateway creates it
    gateway = gateway_factory(env=seaweed_s3.env(bucket, "results"))
    with gateway.client() as http:
        body = {"prompt": "a lighthouse", "size": "64x64", "async": True}
        task = http.post("/v1/images/generations", json=body).json()
        deadline = time.monotonic() + 30
        while task["status"] not in ("completed", "failed") and time.monotonic() < deadline:
            time.sleep(0.1)
            task = http.get(task["poll_url"]).json()
    assert task["status"] == "completed", task
    url = task["data"][0]["url"]
    assert url.startswith(f"{seaweed_s3.endpoint_url}/{bucket}/results/")
    image = httpx.get(url)
    assert image.status_code == 200
    assert image.content.startswith(b"\x89PNG")
    listed = seaweed_s3.client().list_objects_v2(Bucket=bucket, Prefix="results/")
    assert listed["KeyCount"] == 1
