"""Run one claimed task: pick routes, submit or resume, poll, rehost, finish.

Every upstream job reference is journaled on the task (``UpstreamState``) before polling
starts, and a submit to a job-based vendor is journaled as in flight before it is sent, so a
worker that replaces a dead one resumes the same job and never pays for it twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from imagegate import errors
from imagegate.catalog import Catalog, ModelSpec, Route
from imagegate.engine.models import StoredImage, Task, UpstreamState
from imagegate.engine.retry import RetryPolicy
from imagegate.engine.signals import Signals
from imagegate.engine.states import TaskStatus
from imagegate.errors import ProviderAmbiguous, ProviderError, ProviderUnavailable
from imagegate.providers.base import (
    Completed,
    GeneratedImage,
    JobRef,
    Provider,
    ProviderRequest,
    Submitted,
)
from imagegate.router import Router
from imagegate.storage.base import Storage, image_key
from imagegate.store.base import Store
from imagegate.worker.rehost import check_image, fetch_image

log = logging.getLogger("imagegate.worker")
T = TypeVar("T")


class Retry(Exception):
    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s


class Fail(Exception):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class Cancelled(Exception):
    """The client cancelled the task while it was processing."""


class InterruptedSubmit(ProviderAmbiguous):
    """A previous run crashed or stopped mid-submit: the job may exist, so it is not resent.

    Our own interruption, not the vendor's failure: it does not count against the route's
    health (a fleet restart must not send every model to its fallback for a cooldown).
    """


class LeaseLost(Exception):
    """Another worker owns the task now (our lease expired); stop without writing."""


@dataclass
class Context:
    """What a task run needs; built once per worker."""

    store: Store
    catalog: Catalog
    providers: dict[str, Provider]
    router: Router
    storage: Storage
    fetch_http: httpx.AsyncClient
    signals: Signals
    policy: RetryPolicy
    owner: str


def provider_requests(task: Task, route: Route, provider: Provider) -> list[ProviderRequest]:
    """Split the task into provider calls (vendors without ``n`` get one call per image)."""
    req = task.request
    dims = req.dimensions
    per_call = max(1, provider.max_n_per_call)
    counts = [min(per_call, req.n - i) for i in range(0, req.n, per_call)]
    return [
        ProviderRequest(
            upstream_model=route.upstream_model,
            prompt=req.prompt,
            n=count,
            width=dims[0] if dims else None,
            height=dims[1] if dims else None,
            size=req.size,
            aspect_ratio=req.aspect_ratio,
            resolution=req.resolution,
            quality=req.quality,
            style=req.style,
            background=req.background,
            output_format=req.output_format,
            output_compression=req.output_compression,
            seed=None if req.seed is None else req.seed + index,
            negative_prompt=req.negative_prompt,
            user=req.user,
            idempotency_token=f"{task.id}-{route.provider}-{index}",
        )
        for index, count in enumerate(counts)
    ]


async def all_or_nothing(calls: Sequence[Awaitable[T]]) -> list[T]:
    """Run ``calls`` together; on the first failure cancel the rest, then raise it.

    Unlike a bare ``gather``, no sibling keeps running (and writing to the task) after the
    run has given the task back.
    """
    if len(calls) == 1:
        # The common case: nothing to cancel beside it, so no tasks to make.
        return [await calls[0]]
    jobs = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*jobs))
    finally:
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)


class TaskRun:
    """The run of one task by one worker."""

    def __init__(self, ctx: Context, task: Task) -> None:
        self.ctx = ctx
        self.task = task
        self._journal = asyncio.Lock()
        self._state = task.upstream or UpstreamState(route="")
        self._provider: Provider | None = None
        # What a caller in this process may answer from without reading back: what the final
        # write changed (None until that write succeeded; see ``outcome``), and the stored
        # images' bytes.
        self._final: dict[str, Any] | None = None
        self.blobs: dict[str, bytes] = {}

    @property
    def outcome(self) -> Task | None:
        """The task as its final write stored it; built only when asked for (a synchronous
        request's caller), not by each of a worker's thousands of claimed runs."""
        return None if self._final is None else self.task.evolve(**self._final)

    async def execute(self) -> None:
        spec = self.ctx.catalog.model(self.task.model)
        try:
            if spec is None:
                raise Fail(f"Model {self.task.model} is no longer configured.", "upstream_error")
            if self.task.cancel_requested:
                # Cancelled while no worker held it (waiting for a retry, or its worker died).
                await self._cancel_held_jobs()
            async with asyncio.timeout(max(0.0, self.task.deadline_at - time.time())):
                images = await self._generate(spec)
                stored = await self._rehost(images)
        except TimeoutError:
            await self._finish_failed("The task did not finish before its deadline.", "timeout")
            return
        except LeaseLost:
            log.info("task %s: lease lost to another worker", self.task.id)
            return
        except Retry as retry:
            await self.ctx.store.schedule_retry(
                self.task.id, self.ctx.owner, time.time() + retry.delay_s
            )
            return
        except Cancelled:
            await self._finish_failed("Task was cancelled.", "cancelled", cancelled=True)
            return
        except Fail as fail:
            await self._finish_failed(fail.message, fail.code)
            return
        if await asyncio.shield(self.ctx.store.complete(self.task.id, self.ctx.owner, stored)):
            self._final = {
                "status": TaskStatus.COMPLETED,
                "images": tuple(stored),
                "progress": 100,
            }
        self.ctx.signals.finished(self.task.id)

    async def _finish_failed(self, message: str, code: str, *, cancelled: bool = False) -> None:
        if await asyncio.shield(
            self.ctx.store.fail(self.task.id, self.ctx.owner, message, code, cancelled=cancelled)
        ):
            self._final = {
                "status": TaskStatus.FAILED,
                "error": message,
                "error_code": code,
                "cancelled": cancelled,
            }
        self.ctx.signals.finished(self.task.id)

    # --- routes -------------------------------------------------------------------------

    async def _generate(self, spec: ModelSpec) -> list[GeneratedImage]:
        state = self.task.upstream
        tried = frozenset(state.tried) if state else frozenset()
        routes = self.ctx.router.plan(spec, exclude=tried)
        if state is not None:
            # Resume the route that holds our jobs before trying anything else.
            resumed = state.route
            routes.sort(key=lambda r: r.provider != resumed)
        if not routes:
            raise Fail("No provider route is left to serve this model.", "upstream_error")
        for index, route in enumerate(routes):
            provider = self.ctx.providers[route.provider]
            calls = provider_requests(self.task, route, provider)
            if state is None or state.route != route.provider:
                state = UpstreamState(
                    route=route.provider, jobs=[None] * len(calls), tried=sorted(tried)
                )
            try:
                images = await self._run_route(provider, calls, state)
            except ProviderError as error:
                if not isinstance(error, InterruptedSubmit):
                    self.ctx.router.record(
                        route.provider, False, unhealthy=isinstance(error, errors.ProviderAuthError)
                    )
                state = await self._after_failure(
                    error, route, state, last=index == len(routes) - 1
                )
                tried = frozenset(state.tried)
                continue
            self.ctx.router.record(route.provider, True)
            self._provider = provider
            return images
        raise Fail("No provider route is left to serve this model.", "upstream_error")

    async def _after_failure(
        self, error: ProviderError, route: Route, state: UpstreamState, *, last: bool
    ) -> UpstreamState:
        decision = self.ctx.policy.decide(
            error,
            attempt=self.task.attempts,
            has_fallback=not last,
            time_left_s=self.task.deadline_at - time.time(),
        )
        log.warning(
            "task %s: route %s failed (%s): %s -> %s",
            self.task.id,
            route.provider,
            type(error).__name__,
            error.message,
            decision.action,
        )
        if decision.action == "retry":
            raise Retry(decision.delay_s)
        if decision.action == "fail":
            raise Fail(_public_message(error), decision.error_code)
        moved = UpstreamState(route=route.provider, jobs=[], tried=[*state.tried, route.provider])
        await self._save(moved)
        return moved

    async def _run_route(
        self, provider: Provider, calls: list[ProviderRequest], state: UpstreamState
    ) -> list[GeneratedImage]:
        self._state = state
        results = await all_or_nothing(
            [self._run_call(provider, i, call) for i, call in enumerate(calls)]
        )
        return [image for images in results for image in images]

    async def _run_call(
        self, provider: Provider, index: int, call: ProviderRequest
    ) -> list[GeneratedImage]:
        job = self._state.jobs[index] if index < len(self._state.jobs) else None
        if job is not None and job.get("submitting") and not provider.idempotent_submit:
            raise InterruptedSubmit(
                "a previous attempt's submit has an unknown outcome; not resubmitting"
            )
        if job is None or job.get("submitting"):
            outcome = await self._submit(provider, index, call)
            if isinstance(outcome, Completed):
                return outcome.images
            job = outcome.job
            await self._journal_job(index, job)
        return await self._poll(provider, job)

    async def _submit(
        self, provider: Provider, index: int, call: ProviderRequest
    ) -> Completed | Submitted:
        """Submit one call, journaled as in flight first when the vendor runs jobs."""
        journaled = self._journals_submit(provider)
        if journaled:
            await self._journal_job(index, {"submitting": True})
        try:
            async with self.ctx.router.slot(provider.name):
                return await provider.submit(call)
        except (ProviderUnavailable, errors.ProviderRejected):
            # Certainly nothing started upstream: a later attempt may submit this call again.
            if journaled:
                await self._journal_job(index, None)
            raise

    def _journals_submit(self, provider: Provider) -> bool:
        """Whether a submit must be journaled as in flight before it is sent.

        Not when the vendor deduplicates submits and the model has no other route: the run
        that replaces a dead one sends the same call to the same vendor, which answers with
        the job it already started, exactly as if it had found the journal. That saves
        a commit on every call of such a model.
        """
        if not provider.submits_jobs:
            return False
        spec = self.ctx.catalog.model(self.task.model)
        return not (provider.idempotent_submit and spec is not None and len(spec.routes) == 1)

    async def _journal_job(self, index: int, job: JobRef | None) -> None:
        async with self._journal:
            self._state = self._state.with_job(index, job)
            await self._save(self._state)

    async def _save(self, state: UpstreamState) -> None:
        if not await self.ctx.store.save_upstream(self.task.id, self.ctx.owner, state):
            raise LeaseLost()

    async def _poll(self, provider: Provider, job: JobRef) -> list[GeneratedImage]:
        """Poll until the job succeeds; a failed poll started nothing, so keep the job.

        A transient or garbled poll answer (an unknown status among them) is logged and
        polled again with backoff, bounded only by the task's deadline; a job that failed
        upstream raises ``JobFailed`` for the retry policy to judge.
        """
        last: tuple[Any, Any] = (None, None)
        failures = 0
        while True:
            try:
                status = await provider.poll(job)
            except (ProviderUnavailable, ProviderAmbiguous) as error:
                failures += 1
                delay = self.ctx.policy.backoff(failures, error.retry_after)
                log.warning("task %s: poll failed (%s); again in %.1fs", self.task.id, error, delay)
                await self._check_cancel(provider, job)
                await asyncio.sleep(delay)
                continue
            failures = 0
            if status.state == "succeeded":
                return status.images
            if (status.progress, status.queue_position) != last:
                last = (status.progress, status.queue_position)
                await self._best_effort(
                    self.ctx.store.set_progress(self.task.id, self.ctx.owner, *last)
                )
            await self._check_cancel(provider, job)
            await asyncio.sleep(provider.poll_interval_s)

    async def _check_cancel(self, provider: Provider, job: JobRef) -> None:
        current = await self._best_effort(self.ctx.store.get_task(self.task.id))
        if current is not None and current.cancel_requested:
            await self._cancel_upstream(provider, job)
            raise Cancelled()

    async def _cancel_held_jobs(self) -> None:
        """Stop the upstream jobs a previous run journaled, then end as cancelled."""
        state = self.task.upstream
        provider = self.ctx.providers.get(state.route) if state else None
        if state is not None and provider is not None:
            for job in state.jobs:
                if job is not None and not job.get("submitting"):
                    await self._cancel_upstream(provider, job)
        raise Cancelled()

    async def _cancel_upstream(self, provider: Provider, job: JobRef) -> None:
        if not provider.supports_cancel:
            return
        try:
            await provider.cancel(job)
        except ProviderError as error:
            # The client asked to stop; a vendor that cannot confirm it does not change that.
            log.warning("task %s: upstream cancel failed: %s", self.task.id, error)

    @staticmethod
    async def _best_effort(write: Awaitable[T]) -> T | None:
        """A write or read the run can do without while the store is briefly unreachable."""
        try:
            return await write
        except errors.StoreUnavailable:
            return None

    # --- results --------------------------------------------------------------------------

    async def _rehost(self, images: list[GeneratedImage]) -> list[StoredImage]:
        if not images:
            raise Fail("The provider returned no images.", "upstream_error")
        allow_private = self._provider is not None and self._provider.settings.allow_private_urls
        return await all_or_nothing(
            [self._store_one(i, image, allow_private) for i, image in enumerate(images)]
        )

    async def _store_one(
        self, index: int, image: GeneratedImage, allow_private: bool
    ) -> StoredImage:
        try:
            data = image.data
            if data is None and image.url:
                data = await fetch_image(
                    self.ctx.fetch_http, image.url, allow_private=allow_private
                )
            if data is None:
                raise errors.JobFailed("The provider returned an image without data or URL.")
            checked = await check_image(data, self.task.request.output_format)
        except ProviderError as error:
            raise Fail(_public_message(error), error.error_code) from error
        key = image_key(self.task.id, index, checked.extension)
        await self.ctx.storage.put(key, checked.data, checked.content_type)
        self.blobs[key] = checked.data
        return StoredImage(
            key=key,
            content_type=checked.content_type,
            width=checked.width,
            height=checked.height,
            revised_prompt=image.revised_prompt or self.task.request.prompt,
        )


def _public_message(error: ProviderError) -> str:
    """What a client may read: the vendor's reason, without URLs or credentials."""
    if error.error_code == "content_policy_violation":
        return "The request was rejected by the provider's content policy."
    return f"Image generation failed upstream: {error.message}"
