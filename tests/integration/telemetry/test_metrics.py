"""GET /metrics: what an operator graphs and alerts on."""

from __future__ import annotations

import asyncio
import re

import httpx

from energy_ingest.config import Settings
from tests.factories import meter_reading, minute, vehicle_reading
from tests.support import start_engine


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in text.splitlines():
        match = re.match(r"^([a-z_]+)(?:\{(.*)\})? (\S+)$", line)
        if not match or match[1] != name:
            continue
        found = ",".join(sorted((match[2] or "").split(","))) if match[2] else ""
        if found == wanted:
            return float(match[3])
    return 0.0


async def test_metrics_count_outcomes_rejections_batches_and_requests(
    settings: Settings,
) -> None:
    # The rollup folder idle after its first round at start-up: its connection is in use only
    # while it folds, and a fold under way when /metrics answers is not a leak.
    async with start_engine(settings.model_copy(update={"rollup_fold_seconds": 3600})) as engine:
        await _count_outcomes_rejections_batches_and_requests(engine.client)


async def _count_outcomes_rejections_batches_and_requests(client: httpx.AsyncClient) -> None:
    # The folder's first round (at start-up) done: on a loaded machine it can outlast a request.
    for _ in range(200):
        first = (await client.get("/metrics")).text
        if sample(first, "eie_rollup_folds_total", outcome="folded") >= 1:
            break
        await asyncio.sleep(0.05)
    at = minute(-2)
    await client.post("/v1/ingest/meter", json=meter_reading(kwh=1.0, at=at))
    await client.post("/v1/ingest/meter", json=meter_reading(kwh=1.0, at=at))  # duplicate
    await client.post("/v1/ingest/meter", json=meter_reading(kwh=2.0, at=at))  # conflict
    await client.post(
        "/v1/ingest/vehicle/batch", json=[vehicle_reading(), vehicle_reading(soc=900)]
    )

    response = await client.get("/metrics")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert sample(text, "eie_readings_total", kind="meter", outcome="stored") == 1
    assert sample(text, "eie_readings_total", kind="meter", outcome="duplicate") == 1
    assert sample(text, "eie_readings_total", kind="meter", outcome="conflict") == 1
    assert sample(text, "eie_readings_total", kind="vehicle", outcome="stored") == 1
    assert sample(text, "eie_readings_rejected_total", reason="range") == 1
    assert sample(text, "eie_batch_readings_count") == 4
    assert sample(text, "eie_batch_commit_seconds_count") == 4
    assert sample(text, "eie_writer_queue_readings") == 0
    assert sample(text, "eie_pool_connections", pool="write", state="in_use") == 0
    assert sample(text, "eie_pool_connections", pool="read", state="idle") >= 1
    assert (
        sample(
            text,
            "eie_http_request_duration_seconds_count",
            method="POST",
            route="/v1/ingest/meter",
            status="409",
        )
        == 1
    )
