"""``GET /healthz``: liveness plus a store round-trip, for load balancers and orchestrators."""

from __future__ import annotations

import json

from fastapi import APIRouter, Request
from starlette.responses import Response

from imagegate.api import deps
from imagegate.api.schemas import errors

router = APIRouter()


@router.get("/healthz", summary="Health check", responses=errors(503))
async def healthz(request: Request) -> Response:
    rt = deps.runtime(request)
    pending = await rt.store.pending_count()
    worker = rt.worker.in_flight if rt.worker is not None else None
    body = {"status": "ok", "pending": pending, "worker_in_flight": worker}
    return Response(json.dumps(body), media_type="application/json")
