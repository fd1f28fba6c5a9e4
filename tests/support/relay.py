"""A gateway whose model ``relay`` is served by submit-then-poll upstreams (fake task vendors).

Two OpenAI-compatible task upstreams, ``up-a`` (preferred) and ``up-b`` (fallback), each a
``tests.fakes.openai_tasks`` fake on its own loopback port. The fakes remember every job
they started by its Idempotency-Key, so a test can tell whether any call was paid for twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.fakes.openai_tasks import TasksState
from tests.fakes.server import serve_app

MODEL = "relay"
UPSTREAM_KEY_ENV = "RELAY_UPSTREAM_KEY"


@dataclass
class Relay:
    config: Path
    upstreams: dict[str, TasksState]

    @property
    def env(self) -> dict[str, str]:
        return {"IMAGEGATE_CONFIG": str(self.config), UPSTREAM_KEY_ENV: "test-key"}

    def jobs_per_task(self) -> Counter[str]:
        """Upstream jobs started per task, on all upstreams together.

        A job is started by a create carrying a new Idempotency-Key (``<task id>-<provider>-
        <call>``); a create that repeats a key gets the same job back and starts nothing.
        """
        counts: Counter[str] = Counter()
        for state in self.upstreams.values():
            for token in state.idempotency:
                counts[token.split("-", 1)[0]] += 1
        return counts

    def duplicate_jobs(self) -> int:
        """Jobs beyond the first for the same call of a task: paid twice (must be 0)."""
        return sum(n - 1 for n in self.jobs_per_task().values())

    def create_requests(self) -> int:
        return sum(state.create_calls for state in self.upstreams.values())


def _config(urls: dict[str, str]) -> str:
    lines = []
    for name, url in urls.items():
        lines += [
            f'[providers."{name}"]',
            'kind = "openai_compatible"',
            f'base_url = "{url}"',
            f'api_key_env = "{UPSTREAM_KEY_ENV}"',
            "allow_private_urls = true",  # the fake serves result files on loopback
            "max_concurrency = 1000",
            "",
        ]
    routes = ", ".join(
        f'{{ provider = "{name}", upstream_model = "fake-model", priority = {rank} }}'
        for rank, name in enumerate(urls)
    )
    lines += [f"[models.{MODEL}]", f"routes = [{routes}]", ""]
    return "\n".join(lines)


@contextmanager
def relay(tmp_path: Path, **knobs: object) -> Iterator[Relay]:
    """Start ``up-a`` and ``up-b`` and write the gateway configuration naming them."""
    upstreams = {"up-a": TasksState(polls_to_finish=1), "up-b": TasksState(polls_to_finish=1)}
    for state in upstreams.values():
        for knob, value in knobs.items():
            setattr(state, knob, value)
    with ExitStack() as stack:
        urls = {name: stack.enter_context(serve_app(s.app())) for name, s in upstreams.items()}
        config = tmp_path / "relay.toml"
        config.write_text(_config(urls))
        yield Relay(config, upstreams)
