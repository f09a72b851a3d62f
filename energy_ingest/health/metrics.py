"""GET /metrics: Prometheus exposition."""

from __future__ import annotations

import math

from fastapi import APIRouter, Response

from energy_ingest.telemetry.metrics import CONTENT_TYPE
from energy_ingest.web.dependencies import EngineDep

router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response)
async def metrics(engine: EngineDep) -> Response:
    """Readings by outcome, rejections by reason, batches, commit times, queue, pools, HTTP."""
    for name, pool in (("read", engine.database.read_pool), ("write", engine.database.write_pool)):
        engine.metrics.set_pool(name, pool.get_size(), pool.get_idle_size())
    if engine.database.replica is not None:
        staleness = engine.database.replica.staleness()
        engine.metrics.replica_staleness.set(math.inf if staleness is None else staleness)
    return Response(engine.metrics.render(), media_type=CONTENT_TYPE)
