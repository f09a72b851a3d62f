"""Chargers for the OCPP tests: the `ocpp` package in the charge-point role over a real
WebSocket, the messages a charger sends, and the engine process serving them."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any, Protocol

import asyncpg
import httpx
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from tests.factories import iso

OCPP16 = Subprotocol("ocpp1.6")


class Served(Protocol):
    """An engine serving on a real port (tests.faults.processes.EngineProcess)."""

    @property
    def port(self) -> int: ...

    @property
    def base_url(self) -> str: ...

    @property
    def headers(self) -> dict[str, str]: ...


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def ws_url(engine: Served, charge_point_id: str) -> str:
    return f"ws://127.0.0.1:{engine.port}/ocpp/{charge_point_id}"


async def create_key(
    engine: Served, scopes: list[str], device_id: str | None = None, kind: str = "meter"
) -> str:
    body: dict[str, Any] = {"scopes": scopes, "name": "charger"}
    if device_id is not None:
        body |= {"deviceId": device_id, "deviceKind": kind}
    async with httpx.AsyncClient(base_url=engine.base_url, headers=engine.headers) as client:
        answer = await client.post("/v1/keys", json=body)
    assert answer.status_code == 201, answer.text
    token: str = answer.json()["key"]
    return token


class Charger(ChargePoint16):  # type: ignore[misc]  # the package has no types
    """A charge point (the package's client role); `run` reads the engine's answers."""

    task: asyncio.Task[None] | None = None


@contextlib.asynccontextmanager
async def python_charger(
    engine: Served, charge_point_id: str, password: str | None
) -> AsyncIterator[Charger]:
    headers = {"Authorization": basic(charge_point_id, password)} if password else {}
    async with connect(
        ws_url(engine, charge_point_id), subprotocols=[OCPP16], additional_headers=headers
    ) as websocket:
        assert websocket.subprotocol == OCPP16
        charger = Charger(charge_point_id, websocket, response_timeout=30)
        charger.task = asyncio.create_task(charger.start())
        try:
            yield charger
        finally:
            charger.task.cancel()
            await asyncio.gather(charger.task, return_exceptions=True)


async def raw_call(websocket: ClientConnection, action: str, payload: Any) -> list[Any]:
    """Send one CALL as given (no schema of the client's in the way); the engine's answer."""
    unique = str(uuid.uuid4())
    await websocket.send(json.dumps([2, unique, action, payload]))
    answer: list[Any] = json.loads(await websocket.recv())
    assert answer[1] == unique
    return answer


def register_value(
    moment: datetime, register: float, *, unit: str = "Wh", volts: tuple[float, ...] = (230.0,)
) -> dict[str, Any]:
    """One meterValue element: the import register and the voltage of each phase."""
    samples: list[dict[str, Any]] = [
        {
            "value": f"{register:.3f}",
            "measurand": "Energy.Active.Import.Register",
            "unit": unit,
            "context": "Sample.Periodic",
        }
    ]
    for number, voltage in enumerate(volts, start=1):
        samples.append(
            {
                "value": f"{voltage:.1f}",
                "measurand": "Voltage",
                "phase": f"L{number}-N",
                "unit": "V",
            }
        )
    samples.append({"value": "16.0", "measurand": "Current.Import", "unit": "A"})
    return {"timestamp": iso(moment), "sampledValue": samples}


def meter_values(connector: int, transaction: int | None, *elements: Any) -> call.MeterValues:
    return call.MeterValues(
        connector_id=connector, transaction_id=transaction, meter_value=list(elements)
    )


async def metric(engine: Served, name: str, **labels: str) -> float:
    """The sum of a counter's samples whose labels include `labels`, from /metrics."""
    async with httpx.AsyncClient(base_url=engine.base_url) as client:
        text = (await client.get("/metrics")).text
    total = 0.0
    for line in text.splitlines():
        found = re.match(rf"^{name}_total(?:\{{(.*)\}})? (\S+)$", line)
        if found and all(f'{key}="{value}"' in (found[1] or "") for key, value in labels.items()):
            total += float(found[2])
    return total


async def meter_rows(
    database_url: str, meter_id: str
) -> list[tuple[datetime, float | None, float | None, float]]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT ts, kwh_register_ac, kwh_consumed_ac, voltage FROM meter_reading_history"
            " WHERE meter_id = $1 ORDER BY ts",
            meter_id,
        )
    finally:
        await connection.close()
    return [(row[0], row[1], row[2], row[3]) for row in rows]
