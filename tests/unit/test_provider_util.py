"""Rules the HTTP adapters share: which job URLs may receive our key, sizes and ratios."""

from __future__ import annotations

import pytest

from imagegate.errors import ProviderAmbiguous
from imagegate.providers._util import decode_base64, dimensions, job_url, reduced_ratio
from imagegate.providers.base import ProviderRequest


@pytest.mark.parametrize(
    ("url", "base", "expected"),
    [
        ("/v1/tasks/t1", "http://127.0.0.1:8000", "http://127.0.0.1:8000/v1/tasks/t1"),
        ("/v1/tasks/t1", "https://gw.example/api", "https://gw.example/v1/tasks/t1"),
        (
            "https://api.us1.bfl.ai/v1/get_result?id=1",
            "https://api.bfl.ai",
            "https://api.us1.bfl.ai/v1/get_result?id=1",
        ),
    ],
)
def test_job_urls_on_the_vendors_site_are_followed(url: str, base: str, expected: str) -> None:
    assert job_url(url, base) == expected


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://evil.example/v1/get_result?id=1", "https://api.bfl.ai"),
        ("http://api.us1.bfl.ai/v1/get_result?id=1", "https://api.bfl.ai"),  # downgraded
        ("http://127.0.0.1:9/v1/tasks/x", "http://127.0.0.1:8000"),  # another port
        ("http://169.254.169.254/latest", "http://10.0.0.2:8000"),
    ],
)
def test_job_urls_elsewhere_never_receive_our_key(url: str, base: str) -> None:
    with pytest.raises(ProviderAmbiguous):
        job_url(url, base)


def test_dimensions_prefer_pixels_then_the_size_string() -> None:
    assert dimensions(ProviderRequest("m", "p", width=640, height=480, size="auto")) == (640, 480)
    assert dimensions(ProviderRequest("m", "p", size="1536x1024")) == (1536, 1024)
    assert dimensions(ProviderRequest("m", "p", size="auto")) is None


def test_ratios_are_reduced() -> None:
    assert reduced_ratio(1024, 768) == "4:3"
    assert reduced_ratio(1920, 1080) == "16:9"


def test_inline_data_decodes_from_base64_and_data_uris() -> None:
    assert decode_base64("aGk=") == b"hi"
    assert decode_base64("data:image/png;base64,aGk=") == b"hi"
    with pytest.raises(ProviderAmbiguous):
        decode_base64("not base64!")
