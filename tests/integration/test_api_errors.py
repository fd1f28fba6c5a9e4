"""Bad input gets a clear 4xx in the contract's envelope, never a 500 (issue: core, errors)."""

from __future__ import annotations

import json
import socket
from typing import Any

import httpx
import pytest

from tests.support.gateway import Gateway

CREATE = "/v1/images/generations"


def assert_envelope(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    error = body["error"]
    assert set(error) >= {"message", "type", "code", "param"}
    assert isinstance(error["message"], str) and error["message"]
    assert "detail" not in body and "Traceback" not in response.text
    if code is not None:
        assert error["code"] == code
    return body


@pytest.mark.parametrize(
    ("content", "code"),
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2, 3]", "invalid_json"),
        (b'"a string"', "invalid_json"),
        (b"", "invalid_json"),
        (b"\xff\xfe\x00", "invalid_json"),
    ],
)
def test_malformed_bodies(gateway: Gateway, content: bytes, code: str) -> None:
    response = httpx.post(
        gateway.base_url + CREATE,
        content=content,
        headers={**gateway.headers, "content-type": "application/json"},
    )
    assert_envelope(response, 400, code)


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"prompt": "x", "n": "two"}, "n", "invalid_value"),
        ({"prompt": "x", "n": 0}, "n", "invalid_value"),
        ({"prompt": "x", "n": 11}, "n", "invalid_value"),
        ({"prompt": "x", "size": "abc"}, "size", "invalid_value"),
        ({"prompt": "x", "size": "0x0"}, "size", "invalid_value"),
        ({"prompt": "x", "size": "100000x100000"}, "size", "invalid_value"),
        ({"prompt": ""}, "prompt", "invalid_value"),
        ({"prompt": "x" * 100_000}, "prompt", "invalid_value"),
        ({"prompt": "x", "model": "dall-e-9"}, "model", "model_not_found"),
        ({"prompt": "x", "surprise": 1}, "surprise", "unknown_parameter"),
    ],
)
def test_invalid_fields_are_named(
    gateway: Gateway, body: dict[str, Any], param: str, code: str
) -> None:
    with gateway.client() as http:
        payload = assert_envelope(http.post(CREATE, json=body), 400, code)
    assert payload["error"]["param"] == param
    assert payload["error"]["type"] == "invalid_request_error"
    assert payload["validation_errors"][0]["field"] == param


def test_wrong_content_type_is_refused(gateway: Gateway) -> None:
    response = httpx.post(
        gateway.base_url + CREATE,
        content=b"prompt=hello",
        headers={**gateway.headers, "content-type": "application/x-www-form-urlencoded"},
    )
    assert_envelope(response, 415, "unsupported_media_type")


def test_twenty_megabyte_body_is_413(gateway: Gateway) -> None:
    big = b'{"prompt": "' + b"x" * (20 * 1024 * 1024) + b'"}'
    try:
        response = httpx.post(
            gateway.base_url + CREATE,
            content=big,
            headers={**gateway.headers, "content-type": "application/json"},
            timeout=30,
        )
    except httpx.WriteError:
        pytest.fail("server closed the connection instead of answering 413")
    assert_envelope(response, 413, "payload_too_large")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "sk-no-scheme-0123456789"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Bearer sk-unknown-0123456789abcdef"},
    ],
)
def test_missing_or_bad_keys_get_401(gateway: Gateway, headers: dict[str, str]) -> None:
    for method, path in (("POST", CREATE), ("GET", "/v1/tasks/igt_x"), ("GET", "/v1/models")):
        response = httpx.request(
            method, gateway.base_url + path, headers=headers, json={"prompt": "x"}
        )
        assert_envelope(response, 401, "invalid_api_key")


@pytest.mark.parametrize(
    "task_id",
    [
        "..%2Fx",
        "%00",
        "igt_" + "a" * 10_000,
        "x" * 10_240,
        "igt_AAAA",
        "%2e%2e",
        "igt_%F0%9F%92%A5",
    ],
)
def test_odd_task_ids_are_not_found(gateway: Gateway, task_id: str) -> None:
    for prefix in ("/v1/tasks/", "/v1/images/generations/", "/v1/images/"):
        response = httpx.get(gateway.base_url + prefix + task_id, headers=gateway.headers)
        assert_envelope(response, 404, "async_task_not_found")


def test_unknown_routes_and_methods_use_the_envelope(gateway: Gateway) -> None:
    assert_envelope(httpx.get(gateway.base_url + "/v2/whatever"), 404, "not_found")
    assert_envelope(httpx.put(gateway.base_url + "/v1/tasks", headers=gateway.headers), 405)
    assert_envelope(httpx.patch(gateway.base_url + CREATE, headers=gateway.headers), 405)


def test_bad_idempotency_key_header(gateway: Gateway) -> None:
    with gateway.client() as http:
        response = http.post(
            CREATE, json={"prompt": "x", "async": True}, headers={"Idempotency-Key": "k" * 300}
        )
        spaced = http.post(
            CREATE, json={"prompt": "x", "async": True}, headers={"Idempotency-Key": "a b"}
        )
    assert_envelope(response, 400, "invalid_value")
    assert_envelope(spaced, 400, "invalid_value")


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/images/generations HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"GET /v1/models HTTP/1.1\r\nHost: x\r\nA header without a colon\r\n\r\n",
    ],
    ids=["request-line", "content-length", "header"],
)
def test_what_is_not_http_gets_the_envelope_too(gateway: Gateway, raw: bytes) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=10) as conn:
        conn.sendall(raw)
        answer = b"".join(iter(lambda: conn.recv(65536), b""))  # the server closes it
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode().split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines)
    assert status == "HTTP/1.1 400 Bad Request"
    assert (headers["content-type"], headers["connection"]) == ("application/json", "close")
    assert int(headers["content-length"]) == len(body)
    error = json.loads(body)["error"]
    assert error == {
        "message": "The request is not valid HTTP/1.1.",
        "type": "invalid_request_error",
        "code": "invalid_http_request",
        "param": None,
    }
