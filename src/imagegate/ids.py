"""Opaque identifiers: task ids with 160 random bits, and their strict shape check."""

from __future__ import annotations

import base64
import re
import secrets

TASK_PREFIX = "igt_"
_TASK_ID = re.compile(r"^igt_[a-z2-7]{32}$")


def new_task_id() -> str:
    """A URL-safe task id: ``igt_`` and 32 base32 characters (20 random bytes)."""
    return TASK_PREFIX + base64.b32encode(secrets.token_bytes(20)).decode().lower()


def is_task_id(value: str) -> bool:
    """True only for strings we could have issued; anything else is answered as not found."""
    return len(value) == 36 and _TASK_ID.match(value) is not None
