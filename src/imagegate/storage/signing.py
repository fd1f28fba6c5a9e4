"""HMAC signatures for the gateway's own file URLs."""

from __future__ import annotations

import hashlib
import hmac
import time


class URLSigner:
    """Signs ``(key, expires)`` pairs with the server secret; verification is constant-time."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def signature(self, key: str, expires_at: int) -> str:
        msg = f"{key}\n{expires_at}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()[:43]

    def verify(self, key: str, expires_at: int, signature: str, now: float | None = None) -> bool:
        if expires_at < (time.time() if now is None else now) or not signature.isascii():
            return False
        return hmac.compare_digest(self.signature(key, expires_at), signature)
