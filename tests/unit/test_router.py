"""Route order (priority tiers, weighted shuffle), cooldown of failing providers."""

from __future__ import annotations

import random
from collections import Counter

from imagegate.catalog import ModelSpec, Route
from imagegate.router import COOLDOWN_S, MIN_SAMPLES, Router


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


SPEC = ModelSpec(
    id="m",
    routes=(
        Route("backup", "m", priority=1),
        Route("heavy", "m", priority=0, weight=9),
        Route("light", "m", priority=0, weight=1),
    ),
)


def router(clock: Clock | None = None, seed: int = 7) -> Router:
    limits = {"backup": 1, "heavy": 1, "light": 1}
    return Router(limits, clock=clock or Clock(), rng=random.Random(seed))


def test_lower_priority_tiers_come_first() -> None:
    for seed in range(20):
        assert router(seed=seed).plan(SPEC)[-1].provider == "backup"


def test_weights_decide_the_order_within_a_tier_in_proportion() -> None:
    r = router()
    firsts = Counter(r.plan(SPEC)[0].provider for _ in range(2000))
    assert set(firsts) == {"heavy", "light"}
    assert 0.85 < firsts["heavy"] / 2000 < 0.95  # weight 9 of 10


def test_excluded_routes_are_left_out() -> None:
    plan = router().plan(SPEC, exclude=frozenset({"heavy"}))
    assert [r.provider for r in plan] == ["light", "backup"]


def test_a_failing_majority_cools_a_provider_down_and_it_goes_last() -> None:
    clock = Clock()
    r = router(clock)
    for _ in range(MIN_SAMPLES):
        r.record("heavy", False)
    assert r.cooling("heavy")
    assert r.plan(SPEC)[-1].provider == "heavy"
    clock.now += COOLDOWN_S + 1
    assert not r.cooling("heavy")


def test_a_few_failures_among_successes_do_not_cool() -> None:
    r = router()
    for ok in (True, False, True, False, True, True):
        r.record("light", ok)
    assert not r.cooling("light")


def test_bad_credentials_cool_a_provider_at_once() -> None:
    r = router()
    r.record("light", False, unhealthy=True)
    assert r.cooling("light")
