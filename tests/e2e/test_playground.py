"""The playground page in a real Chromium against a real ``imagegate serve`` process."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.support.gateway import Gateway
from tests.support.seaweed import SeaweedS3

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 30_000
# The server's suggested poll interval; a short one keeps the test quick.
FAST_POLLS = {"IMAGEGATE_POLL_AFTER": "1"}
GatewayFactory = Callable[..., Gateway]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh tab (empty localStorage); the test fails if the page's script throws."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    yield tab
    context.close()
    assert errors == []


def open_with_key(page: Page, gateway: Gateway, key: str | None = None) -> None:
    page.goto(gateway.base_url + "/")
    page.get_by_label("API key").fill(key or gateway.key)
    page.get_by_role("button", name="Save key").click()


def submit(page: Page, prompt: str, size: str | None = None) -> None:
    expect(page.get_by_label("Model")).to_be_enabled(timeout=WAIT_MS)
    if size:
        page.get_by_label("Size").select_option(size)
    page.get_by_label("Prompt").fill(prompt)
    page.get_by_role("button", name="Generate").click()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)


def wait_terminal(gateway: Gateway, task_id: str) -> dict[str, object]:
    with gateway.client() as http:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            task: dict[str, object] = http.get(f"/v1/tasks/{task_id}").json()
            if task["status"] in ("completed", "failed"):
                return task
            time.sleep(0.1)
    raise AssertionError(f"task {task_id} did not finish")


def test_submitted_prompt_ends_as_a_loaded_image_in_the_gallery(
    page: Page, gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory(env=FAST_POLLS)
    polled: list[str] = []
    page.on("request", lambda r: polled.append(r.url) if r.method == "GET" else None)
    open_with_key(page, gateway)
    expect(page.get_by_label("Size")).to_have_value("1024x1024", timeout=WAIT_MS)

    submit(page, "A lighthouse on a cliff at dawn", size="512x512")

    card = page.locator("#gallery .card").first
    expect(card.locator(".status")).to_have_text("Completed", timeout=WAIT_MS)
    image = card.locator("img")
    expect(image).to_have_attribute(
        "alt", "Generated image 1 of 1: A lighthouse on a cliff at dawn"
    )
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => [img.complete, img.naturalWidth]") == [True, 512]
    expect(page.locator("#current-status")).to_have_text("Completed")
    task_id = card.get_attribute("data-task-id")
    assert f"{gateway.base_url}/v1/tasks/{task_id}" in polled  # the exact poll_url
    screenshot(page, "playground-completed.png")


def test_image_stored_in_s3_is_shown_from_its_presigned_url(
    page: Page, gateway_factory: GatewayFactory, seaweed_s3: SeaweedS3
) -> None:
    bucket = f"playground-{uuid.uuid4().hex[:10]}"
    gateway = gateway_factory(env={**FAST_POLLS, **seaweed_s3.env(bucket)})
    open_with_key(page, gateway)

    submit(page, "A harbour at night", size="256x256")

    image = page.locator("#gallery .card img").first
    s3_url = re.compile(f"^{re.escape(seaweed_s3.endpoint_url)}/{bucket}/")
    expect(image).to_have_attribute("src", s3_url, timeout=WAIT_MS)
    image.evaluate("img => img.decode()")
    assert image.evaluate("img => img.naturalWidth") == 256


def test_failed_task_shows_its_error_message_and_code(
    page: Page, gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory(env={**FAST_POLLS, "IMAGEGATE_LOCAL_FAILURE_RATE": "1"})
    open_with_key(page, gateway)

    submit(page, "This one is meant to fail")

    card = page.locator("#gallery .card").first
    expect(card.locator(".status")).to_have_text("Failed", timeout=WAIT_MS)
    task = wait_terminal(gateway, str(card.get_attribute("data-task-id")))
    assert isinstance(task["error"], str)
    assert isinstance(task["error_code"], str)
    for where in (card.locator(".card-error"), page.locator("#current-error")):
        expect(where).to_contain_text(task["error"])
        expect(where.locator(".error-code")).to_have_text(task["error_code"])
    expect(card.locator(".card-prompt")).to_have_text("This one is meant to fail")
    expect(card.locator("img")).to_have_count(0)
    screenshot(page, "playground-failed.png")


def test_gallery_lists_earlier_tasks_newest_first_with_the_key_remembered(
    page: Page, gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory(env=FAST_POLLS)
    with gateway.client() as http:
        for prompt in ("first of two", "second of two"):
            body = {"prompt": prompt, "size": "64x64", "async": True}
            created = http.post("/v1/images/generations", json=body).json()
            wait_terminal(gateway, created["id"])
    open_with_key(page, gateway)
    expect(page.locator("#gallery .card-prompt")).to_have_text(
        ["second of two", "first of two"], timeout=WAIT_MS
    )

    page.reload()

    expect(page.get_by_label("API key")).to_have_value(gateway.key)
    expect(page.locator("#gallery .card-prompt")).to_have_text(
        ["second of two", "first of two"], timeout=WAIT_MS
    )
    newest = datetime.fromtimestamp(created["created"], UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    expect(page.locator("#gallery .card time").first).to_have_attribute("datetime", newest)


def test_a_rejected_key_is_reported_next_to_the_key_field(
    page: Page, gateway_factory: GatewayFactory
) -> None:
    gateway = gateway_factory()
    open_with_key(page, gateway, key="sk-not-a-real-key-000000")
    expect(page.locator("#key-note")).to_contain_text("Key rejected", timeout=WAIT_MS)
    expect(page.get_by_role("button", name="Generate")).to_be_disabled()
