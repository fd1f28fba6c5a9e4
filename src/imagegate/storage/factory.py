"""Choose the storage backend from settings: a local directory by default, S3 when asked."""

from __future__ import annotations

from imagegate.config import Settings
from imagegate.storage.base import Storage
from imagegate.storage.local import LocalStorage
from imagegate.storage.signing import URLSigner


def build_storage(settings: Settings, signer: URLSigner) -> Storage:
    """``IMAGEGATE_STORAGE_URL`` unset: files under the data dir; ``s3://bucket/prefix``: S3."""
    url = settings.storage_url
    if not url:
        return LocalStorage(settings.data_dir / "files", signer, settings.durability)
    if url.startswith("s3://"):
        # Imported here so a local-only gateway never loads the AWS SDK.
        from imagegate.storage.s3 import S3Storage

        return S3Storage.from_settings(settings)
    raise ValueError(
        f"IMAGEGATE_STORAGE_URL must be empty (local files) or s3://bucket/prefix, got {url!r}"
    )
