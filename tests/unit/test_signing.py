"""Signed file URLs: valid until they expire, and nothing else passes."""

from __future__ import annotations

from imagegate.storage.signing import URLSigner

SIGNER = URLSigner(b"secret")


def test_a_fresh_signature_verifies_until_expiry() -> None:
    sig = SIGNER.signature("a/b.png", 2_000)
    assert SIGNER.verify("a/b.png", 2_000, sig, now=1_999)
    assert not SIGNER.verify("a/b.png", 2_000, sig, now=2_001)


def test_any_change_breaks_the_signature() -> None:
    sig = SIGNER.signature("a/b.png", 2_000)
    assert not SIGNER.verify("a/c.png", 2_000, sig, now=0)
    assert not SIGNER.verify("a/b.png", 2_001, sig, now=0)
    assert not URLSigner(b"other").verify("a/b.png", 2_000, sig, now=0)


def test_non_ascii_signatures_are_rejected_not_crashing() -> None:
    assert not SIGNER.verify("a/b.png", 2_000, "Ä" * 43, now=0)
