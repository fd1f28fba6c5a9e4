"""Build a running gateway from settings: store, catalogue, providers, storage, engine, worker.

The API process and ``imagegate worker`` both start from here, so they can never be wired
differently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import httpx

from imagegate import catalog_file, collector, outbound
from imagegate.catalog import Catalog, default_catalog
from imagegate.config import Settings
from imagegate.engine.models import Task
from imagegate.engine.retry import RetryPolicy
from imagegate.engine.service import EngineSettings, TaskService
from imagegate.engine.signals import Signals
from imagegate.keys import KeyRing
from imagegate.providers.base import Provider, ProviderSettings
from imagegate.providers.registry import build_provider
from imagegate.router import Router
from imagegate.storage.base import Storage
from imagegate.storage.factory import build_storage
from imagegate.storage.signing import URLSigner
from imagegate.store.notify import Listener
from imagegate.store.sql import SqlStore
from imagegate.worker.execute import Context
from imagegate.worker.loop import Worker, worker_id
from imagegate.worker.rehost import load_decoders
from imagegate.worker.sweeper import Sweeper

log = logging.getLogger("imagegate")


def load_catalog(settings: Settings) -> Catalog:
    builtin = default_catalog(settings.local_latency, settings.local_failure_rate)
    return catalog_file.load_catalog(settings.config, builtin=builtin)


@dataclass
class Runtime:
    settings: Settings
    catalog: Catalog
    store: SqlStore
    storage: Storage
    signer: URLSigner
    signals: Signals
    service: TaskService
    keys: KeyRing
    providers: dict[str, Provider]
    http: httpx.AsyncClient
    worker: Worker | None = None
    _worker_run: asyncio.Task[None] | None = None
    _background: list[asyncio.Task[None]] = field(default_factory=list)  # cancelled on close

    @classmethod
    def build(cls, settings: Settings) -> Runtime:
        catalog = load_catalog(settings)
        store = SqlStore(settings.resolved_database_url, durability=settings.durability)
        signer = URLSigner(settings.signing_secret())
        storage = build_storage(settings, signer)
        signals = Signals()
        http = outbound.client(60.0)
        providers = {
            name: build_provider(ps, _provider_client(ps)) for name, ps in catalog.providers.items()
        }

        def cancellable(task: Task) -> bool:
            """The route holding the task's job can stop it; before any job is journaled,
            every route of the model could (whichever the worker picks)."""
            spec = catalog.model(task.model)
            if task.upstream is not None and task.upstream.route:
                names = [task.upstream.route]
            else:
                names = [r.provider for r in spec.routes] if spec else []
            found = [providers.get(name) for name in names]
            return bool(found) and all(p is not None and p.supports_cancel for p in found)

        # With LISTEN/NOTIFY a waiter hears of a finish at once; re-reading is a fallback.
        wait_poll_s = 0.25 if settings.uses_sqlite else 1.0
        service = TaskService(
            store,
            catalog,
            signals,
            EngineSettings(settings.retention, settings.default_deadline, wait_poll_s),
            cancellable,
        )
        return cls(
            settings=settings,
            catalog=catalog,
            store=store,
            storage=storage,
            signer=signer,
            signals=signals,
            service=service,
            keys=KeyRing(store),
            providers=providers,
            http=http,
        )

    async def start(self, *, run_worker: bool, serves_api: bool = True) -> None:
        """Open the store and storage; ``serves_api`` is False in a process of workers only,
        which hears only of new tasks (``store.notify``)."""
        await self.store.start()
        await self.storage.start()
        await self.keys.bootstrap(self.settings.api_keys)
        collector.tune()
        if self.store.is_postgres:
            # Other processes' new and finished tasks reach this one through NOTIFY.
            listener = Listener(
                self.store.url, self.signals, self.store.live, serves_api=serves_api
            )
            self._background.append(asyncio.create_task(listener.run(), name="listener"))
        if run_worker:
            self.start_worker(beside_api=True)

    def start_worker(self, *, beside_api: bool = False) -> Worker:
        """The worker; ``beside_api`` when this process's API creates tasks (and signals
        them to it directly)."""
        load_decoders()  # only workers check images
        ctx = Context(
            store=self.store,
            catalog=self.catalog,
            providers=self.providers,
            router=Router({n: p.settings.max_concurrency for n, p in self.providers.items()}),
            storage=self.storage,
            fetch_http=self.http,
            signals=self.signals,
            policy=RetryPolicy(),
            owner=worker_id(),
        )
        self.worker = Worker(
            ctx,
            concurrency=self.settings.worker_concurrency,
            poll_interval_s=self.settings.worker_poll_interval,
            lease_s=self.settings.lease,
            grace_s=self.settings.shutdown_grace,
            # Told of every new task: by the listener (``start``) on PostgreSQL, by the API on
            # SQLite, whose tasks from other processes' APIs their own workers take.
            signalled=self.store.is_postgres or beside_api,
        )
        self.service.runner = self.worker
        sweeper = Sweeper(self.store, self.storage, self.signals, self.settings.sweep_interval)
        self._worker_run = asyncio.create_task(self.worker.run(), name="worker")
        self._background.append(asyncio.create_task(sweeper.run(), name="sweeper"))
        return self.worker

    async def close_when_stopped(self) -> None:
        """Wait for the worker to finish draining (after ``stop``), then close."""
        if self._worker_run is not None:
            await asyncio.shield(self._worker_run)
        await self.close()

    async def close(self) -> None:
        """Stop claiming, let the worker drain (finish or release its tasks), then close."""
        if self.worker is not None:
            self.worker.stop()
        for job in self._background:
            job.cancel()
        jobs = [*self._background, *([self._worker_run] if self._worker_run else [])]
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
        for provider in self.providers.values():
            await provider.aclose()
            await provider.http.aclose()
        await self.http.aclose()
        await self.storage.aclose()
        await self.store.close()


def _provider_client(ps: ProviderSettings) -> httpx.AsyncClient:
    """Each provider gets its own client: its own timeout, and a connection pool as large as
    the calls it may have in flight (httpx's default of 100 would queue the rest unseen),
    each connection kept open for the next call instead of reconnecting."""
    size = ps.max_concurrency
    return outbound.client(
        ps.timeout_s, httpx.Limits(max_connections=size, max_keepalive_connections=size)
    )
