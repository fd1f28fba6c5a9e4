"""The polling functions of the two seed documents, as written there; only the base URL
(``https://api.lemondata.cc``) is replaced by the gateway under test."""

# ruff: noqa: S113

import time

import requests

BASE_URL = "http://127.0.0.1:8000"


# From seeds/000 (GET /v1/tasks/{id}).
def poll_image_task(task_id, api_key, max_wait=300, interval=3):
    """Poll for image generation result with timeout."""
    url = f"{BASE_URL}/v1/tasks/{task_id}"
    headers = {"Authorization": f"Bearer {api_key}"}

    start_time = time.time()
    while time.time() - start_time < max_wait:
        response = requests.get(url, headers=headers)
        data = response.json()

        if data["status"] == "completed":
            return data["data"][0]["url"]
        elif data["status"] == "failed":
            raise Exception(data.get("error", "Generation failed"))

        time.sleep(interval)

    raise TimeoutError(f"Task {task_id} did not complete within {max_wait}s")


# From seeds/001 (GET /v1/images/generations/{task_id}).
def poll_image_generation(task_id, api_key, max_wait=300, interval=3):
    """Poll for image generation result with timeout."""
    url = f"{BASE_URL}/v1/images/generations/{task_id}"
    headers = {"Authorization": f"Bearer {api_key}"}

    start_time = time.time()
    while time.time() - start_time < max_wait:
        response = requests.get(url, headers=headers)
        data = response.json()

        if data["status"] == "completed":
            return data["data"][0]["url"]
        elif data["status"] == "failed":
            raise Exception(data.get("error", "Generation failed"))

        time.sleep(interval)

    raise TimeoutError(f"Task {task_id} did not complete within {max_wait}s")


# The seeds' advice "prefer the exact poll_url", applied to the same function.
def poll_url(poll_url, api_key, max_wait=300, interval=3):
    """Poll for image generation result with timeout."""
    url = f"{BASE_URL}{poll_url}"
    headers = {"Authorization": f"Bearer {api_key}"}

    start_time = time.time()
    while time.time() - start_time < max_wait:
        response = requests.get(url, headers=headers)
        data = response.json()

        if data["status"] == "completed":
            return data["data"][0]["url"]
        elif data["status"] == "failed":
            raise Exception(data.get("error", "Generation failed"))

        time.sleep(interval)

    raise TimeoutError(f"Polling {poll_url} did not complete within {max_wait}s")
