"""Which storage the settings select, and how S3 URLs are signed without any I/O."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import pytest

from imagegate.config import Settings
from imagegate.ids import new_task_id
from imagegate.storage import s3
from imagegate.storage.base import image_key
from imagegate.storage.factory import build_storage
from imagegate.storage.local import LocalStorage, check_key
from imagegate.storage.s3 import MAX_URL_TTL, S3Storage, parse_storage_url
from imagegate.storage.signing import URLSigner

SIGNER = URLSigner(b"unit-secret")
S3_SETTINGS = {
    "s3_endpoint_url": "http://127.0.0.1:9",
    "s3_access_key_id": "AKIDEXAMPLE",
    "s3_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
}


def test_no_storage_url_means_files_under_the_data_dir(tmp_path: Path) -> None:
    storage = build_storage(Settings(data_dir=tmp_path), SIGNER)
    assert isinstance(storage, LocalStorage)
    assert storage.root == tmp_path / "files"


def test_s3_url_selects_s3_with_bucket_and_prefix(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage_url="s3://images/gateway/prod/", **S3_SETTINGS)
    storage = build_storage(settings, SIGNER)
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix) == ("images", "gateway/prod/")


@pytest.mark.parametrize("url", ["gs://bucket/x", "/var/lib/images", "s3:///no-bucket"])
def test_other_storage_urls_are_refused_with_the_variable_named(url: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="s3://bucket/prefix"):
        build_storage(Settings(data_dir=tmp_path, storage_url=url), SIGNER)


def test_storage_url_without_prefix_stores_at_the_bucket_root() -> None:
    assert parse_storage_url("s3://images") == ("images", "")


def test_s3_prefix_with_odd_characters_is_refused_at_start(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, storage_url="s3://images/a b/../c", **S3_SETTINGS)
    with pytest.raises(ValueError, match="prefix"):
        build_storage(settings, SIGNER)


def _signed(
    monkeypatch: pytest.MonkeyPatch, now: float, expires_at: int
) -> tuple[str, dict[str, list[str]]]:
    clock = SimpleNamespace(time=lambda: now, strftime=time.strftime, gmtime=time.gmtime)
    monkeypatch.setattr(s3, "time", clock)
    storage = S3Storage(
        "images",
        "pre",
        endpoint_url="http://127.0.0.1:9",
        access_key_id=S3_SETTINGS["s3_access_key_id"],
        secret_access_key=S3_SETTINGS["s3_secret_access_key"],
    )
    url = storage.url("tasks/t1/0.png", expires_at)
    assert storage.url("tasks/t1/0.png", expires_at) == url
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}", parse_qs(parts.query)


MINUTE = 1_789_999_980  # a multiple of 60
NOW = MINUTE + 10.5


def test_presigned_url_is_path_style_sigv4_for_the_prefixed_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The endpoint is a closed port: signing must not need the server.
    base, query = _signed(monkeypatch, NOW, MINUTE + 3600)
    assert base == "http://127.0.0.1:9/images/pre/tasks/t1/0.png"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")
    assert len(query["X-Amz-Signature"][0]) == 64


def test_presigned_url_is_signed_at_the_minute_so_polls_get_the_same_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, early = _signed(monkeypatch, NOW, MINUTE + 3600)
    _, late = _signed(monkeypatch, NOW + 29, MINUTE + 3600)
    assert early == late
    assert early["X-Amz-Date"] == [time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(MINUTE))]
    assert early["X-Amz-Expires"] == ["3600"]  # valid until exactly expires_at


def test_presigned_url_lifetime_is_clamped_to_what_sigv4_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, past = _signed(monkeypatch, NOW, int(NOW) - 100)
    _, far = _signed(monkeypatch, NOW, int(NOW) + 30 * 86400)
    assert past["X-Amz-Expires"] == ["1"]
    assert far["X-Amz-Expires"] == [str(MAX_URL_TTL)]


def test_s3_without_any_credentials_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(ValueError, match="IMAGEGATE_S3_ACCESS_KEY_ID"):
        S3Storage("images", endpoint_url="http://127.0.0.1:9")


@pytest.mark.parametrize(
    ("durability", "syncs"), [(None, False), ("crash", False), ("power", True)]
)
async def test_local_files_are_synced_only_for_power_durability(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, durability: str | None, syncs: bool
) -> None:
    if durability is not None:
        monkeypatch.setenv("IMAGEGATE_DURABILITY", durability)
    storage = build_storage(Settings(data_dir=tmp_path), SIGNER)
    assert isinstance(storage, LocalStorage)
    assert storage.sync is syncs
    await storage.put("t1/0.png", b"picture", "image/png")
    await storage.put("t1/0.png", b"replaced", "image/png")
    assert await storage.get("t1/0.png") == b"replaced"
    assert [p.name for p in (tmp_path / "files" / "t1").iterdir()] == ["0.png"]  # no temp left


async def test_a_file_left_half_written_is_replaced_whole(tmp_path: Path) -> None:
    storage = build_storage(Settings(data_dir=tmp_path), SIGNER)
    folder = tmp_path / "files" / "ab"
    folder.mkdir(parents=True)
    (folder / "igt_ab-0.png").write_bytes(b"pic")  # what a run killed mid-write leaves
    await storage.put("ab/igt_ab-0.png", b"picture", "image/png")
    assert await storage.get("ab/igt_ab-0.png") == b"picture"
    assert [p.name for p in folder.iterdir()] == ["igt_ab-0.png"]


def test_images_are_spread_over_folders_named_by_the_task_id() -> None:
    task_id = new_task_id()
    assert image_key(task_id, 1, "webp") == f"{task_id[4:6]}/{task_id}-1.webp"
    assert check_key(image_key(task_id, 0, "png"))


def test_an_unknown_durability_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMAGEGATE_DURABILITY", "disk")
    with pytest.raises(ValueError, match="durability"):
        Settings()
