"""The built-in provider keeps recent pictures: a repeated request is not drawn again."""

from __future__ import annotations

import asyncio

from imagegate.providers.base import ProviderRequest
from imagegate.providers.local import Drawn, render


def _request(prompt: str, **extra: object) -> ProviderRequest:
    return ProviderRequest(upstream_model="local", prompt=prompt, width=64, height=64, **extra)  # type: ignore[arg-type]


def test_a_repeated_request_returns_the_kept_picture_and_the_same_bytes_as_a_fresh_draw() -> None:
    drawn = Drawn(4)
    first = asyncio.run(drawn.get_or_draw(_request("a red fox", idempotency_token="t1")))
    again = asyncio.run(drawn.get_or_draw(_request("a red fox", idempotency_token="t2")))
    assert again[0] is first[0]  # kept, not drawn again
    assert first[0] == render(_request("a red fox"))


def test_what_the_picture_depends_on_is_part_of_the_key() -> None:
    drawn = Drawn(8)
    base = asyncio.run(drawn.get_or_draw(_request("a red fox")))[0]
    for changed in (
        _request("a blue fox"),
        _request("a red fox", seed=7),
        _request("a red fox", output_format="webp"),
        _request("a red fox", background="transparent"),
    ):
        assert asyncio.run(drawn.get_or_draw(changed))[0] != base


def test_the_least_recently_used_picture_is_evicted_first() -> None:
    drawn = Drawn(2)
    a = asyncio.run(drawn.get_or_draw(_request("a")))[0]
    b = asyncio.run(drawn.get_or_draw(_request("b")))[0]
    assert asyncio.run(drawn.get_or_draw(_request("a")))[0] is a  # a is now the most recent
    asyncio.run(drawn.get_or_draw(_request("c")))
    assert asyncio.run(drawn.get_or_draw(_request("a")))[0] is a
    assert asyncio.run(drawn.get_or_draw(_request("b")))[0] is not b  # evicted, drawn anew


def test_requests_arriving_together_share_one_drawing() -> None:
    async def together() -> list[list[bytes]]:
        drawn = Drawn(4)
        return await asyncio.gather(*(drawn.get_or_draw(_request("a crowd")) for _ in range(50)))

    results = asyncio.run(together())
    assert all(result is results[0] for result in results)
