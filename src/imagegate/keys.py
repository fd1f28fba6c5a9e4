"""API keys: generation, hashing, and the authentication cache of the hot path.

Keys are 256-bit random tokens, so one SHA-256 is a sound hash (no slow KDF needed: there is
nothing to brute-force). Only the hash and a short display prefix are stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from imagegate.errors import AuthenticationFailed
from imagegate.store.base import ApiKeyRecord, Store

KEY_PREFIX = "sk-ig-"
CACHE_TTL_S = 5.0  # a revoked key stops working within this many seconds


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def key_id_for(key_hash: str) -> str:
    return "key_" + key_hash[:16]


def record_for(key: str, name: str = "", now: float | None = None) -> ApiKeyRecord:
    digest = hash_key(key)
    return ApiKeyRecord(
        id=key_id_for(digest),
        key_hash=digest,
        prefix=key[:10],
        name=name,
        created_at=time.time() if now is None else now,
    )


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


class KeyRing:
    """Resolves bearer keys to key ids through the store, with a short positive/negative cache."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def authenticate(self, header: str | None) -> str:
        """The key id for an ``Authorization: Bearer sk-...`` header; every failure is a 401."""
        if not header:
            raise AuthenticationFailed(
                "Missing API key. Send it as 'Authorization: Bearer sk-...'."
            )
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token.startswith("sk-") or len(token) > 256:
            raise AuthenticationFailed(
                "Malformed Authorization header. Expected 'Authorization: Bearer sk-...'."
            )
        found = await self.key_id(token)
        if found is None:
            raise AuthenticationFailed("Incorrect API key provided.")
        return found

    async def key_id(self, key: str) -> str | None:
        """The key's id when it is known and not revoked, else None."""
        # Cached by the key itself, not its hash: hashing was a measurable share of a poll,
        # and the key is in this process's memory anyway while its requests are served.
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        record = await self.store.key_by_hash(hash_key(key))
        key_id = record.id if record is not None and record.revoked_at is None else None
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[key] = (now + CACHE_TTL_S, key_id)
        return key_id

    async def bootstrap(self, keys: list[str]) -> None:
        """Make sure every key from the environment is stored (hashed)."""
        for key in keys:
            if await self.store.key_by_hash(hash_key(key)) is None:
                await self.store.add_key(record_for(key, name="from IMAGEGATE_API_KEYS"))
