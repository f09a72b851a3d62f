"""The simulator's chargers over OCPP 1.6J: each meter is connector 1 of a charge point of its
own, which holds one WebSocket to the engine and sends its readings as MeterValues.

Only the meters' readings change path: vehicles still POST theirs, and assignments, readiness
and the verdicts use the HTTP API. A fleet meter `sim-m0001:1` is the charge point `sim-m0001`
(its connector 1), as the engine names a connector's meter. A charge point connects on its
first reading (BootNotification, then StatusNotification Available), signs in with security
profile 1 (its id and the simulator's API key), and has one call in flight at a time, as OCPP
1.6 asks. A CALLRESULT is the engine's answer after the commit, so a reading counts as stored
once it arrives; a CALLERROR `InternalError` (database down, writer full) is sent again after a
back-off, as a charger retries transaction messages.

OCPP-J is four JSON arrays, so the simulator speaks it with the `websockets` package directly
rather than with the `ocpp` package, whose schema check of every call runs in a thread.
The simulator's chargers send MeterValues outside transactions (connector 1, no transactionId):
its sessions are the vehicles', and StartTransaction/StopTransaction are the engine tests' part.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import orjson
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException
from websockets.typing import Subprotocol

from energy_ingest.simulator.client import (
    AccessRefused,
    Delivered,
    EngineClient,
    EngineUnreachable,
    Kind,
)

CONNECTOR = 1
_SUBPROTOCOL = Subprotocol("ocpp1.6")
_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
_OPEN_TIMEOUT_SECONDS = 30.0


class _CallError(Exception):
    def __init__(self, code: str, description: str) -> None:
        super().__init__(f"{code}: {description}")
        self.code = code


def charge_point_of(meter_id: str) -> str:
    """The charge point of a connector's meter id (`{chargePointId}:{connectorId}`)."""
    return meter_id.rpartition(":")[0] or meter_id


def ocpp_base_url(url: str) -> str:
    """`ws://host:port/ocpp` of the engine at `http://host:port` (wss for https)."""
    parts = urlsplit(url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + "/ocpp", "", ""))


def meter_values(items: list[dict[str, Any]]) -> dict[str, Any]:
    """A MeterValues payload of connector 1 holding `items` (meter readings as the HTTP API
    takes them), one meterValue element each. Energies in kWh and values written with repr,
    so the engine reads back exactly the float the simulator computed."""
    elements = []
    for item in items:
        samples: list[dict[str, Any]] = []
        if item.get("kwhRegisterAc") is not None:
            samples.append(
                {
                    "value": repr(float(item["kwhRegisterAc"])),
                    "measurand": "Energy.Active.Import.Register",
                    "unit": "kWh",
                    "context": "Sample.Periodic",
                }
            )
        if item.get("kwhConsumedAc") is not None:
            samples.append(
                {
                    "value": repr(float(item["kwhConsumedAc"])),
                    "measurand": "Energy.Active.Import.Interval",
                    "unit": "kWh",
                    "context": "Sample.Periodic",
                }
            )
        samples.append({"value": repr(float(item["voltage"])), "measurand": "Voltage", "unit": "V"})
        elements.append({"timestamp": item["timestamp"], "sampledValue": samples})
    return {"connectorId": CONNECTOR, "meterValue": elements}


@dataclass
class _ChargePoint:
    """One simulated charge point's connection; `lock` keeps one call in flight."""

    charge_point_id: str
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    websocket: ClientConnection | None = None


class OcppEngineClient(EngineClient):
    """EngineClient whose meter readings go over OCPP, one WebSocket per charge point."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, api_key: str | None, **options: Any
    ) -> None:
        super().__init__(http, **options)
        self._base = ocpp_base_url(url)
        self._api_key = api_key
        self._charge_points: dict[str, _ChargePoint] = {}
        self._ids = itertools.count()
        self.connections = 0

    async def close(self) -> None:
        """Close every charge point's connection."""
        connections = [cp.websocket for cp in self._charge_points.values() if cp.websocket]
        await asyncio.gather(
            *(websocket.close() for websocket in connections), return_exceptions=True
        )

    async def send_batch(self, kind: Kind, body: bytes) -> Delivered:
        """Meter readings as one MeterValues per charge point (vehicles: the HTTP batch)."""
        if kind != "meter":
            return await super().send_batch(kind, body)
        by_meter: dict[str, list[dict[str, Any]]] = {}
        for item in orjson.loads(body):
            by_meter.setdefault(str(item["meterId"]), []).append(item)
        results = await asyncio.gather(
            *(self._send(meter, items) for meter, items in by_meter.items())
        )
        delivered = Delivered()
        for result in results:
            delivered.stored += result.stored
            delivered.rejected += result.rejected
            delivered.unavailable += result.unavailable
            delivered.transport_errors += result.transport_errors
            delivered.messages = (delivered.messages + result.messages)[:3]
        return delivered

    async def send_one(self, kind: Kind, body: bytes) -> Delivered:
        """One meter reading as a MeterValues of its charge point (vehicles: HTTP)."""
        if kind != "meter":
            return await super().send_one(kind, body)
        item = orjson.loads(body)
        return await self._send(str(item["meterId"]), [item])

    async def _send(self, meter_id: str, items: list[dict[str, Any]]) -> Delivered:
        charge_point_id = charge_point_of(meter_id)
        charge_point = self._charge_points.get(charge_point_id)
        if charge_point is None:
            charge_point = self._charge_points[charge_point_id] = _ChargePoint(charge_point_id)
        delivered = Delivered()
        payload = meter_values(items)
        failures = 0
        async with charge_point.lock:
            while True:
                try:
                    websocket = await self._connected(charge_point)
                    await self._call(websocket, "MeterValues", payload)
                    delivered.stored = len(items)
                    return delivered
                except _CallError as error:
                    if error.code != "InternalError":  # refused for good: sending again won't do
                        delivered.rejected = len(items)
                        delivered.messages = (str(error),)
                        return delivered
                    delivered.unavailable += 1
                except (WebSocketException, OSError, TimeoutError) as error:
                    if isinstance(error, InvalidStatus) and error.response.status_code in (
                        401,
                        403,
                    ):
                        raise AccessRefused(
                            f"charge point {charge_point_id}: the engine refused the key"
                            f" ({error.response.status_code}); pass an admin key with --api-key"
                        ) from error
                    delivered.transport_errors += 1
                    charge_point.websocket = None
                failures += 1
                if failures >= 30:
                    raise EngineUnreachable(
                        f"charge point {charge_point_id}: no CALLRESULT after {failures} tries"
                    )
                await asyncio.sleep(_BACKOFF_SECONDS[min(failures, len(_BACKOFF_SECONDS)) - 1])

    async def _connected(self, charge_point: _ChargePoint) -> ClientConnection:
        if charge_point.websocket is not None:
            return charge_point.websocket
        headers = {}
        if self._api_key:
            credentials = f"{charge_point.charge_point_id}:{self._api_key}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode()
        websocket = await connect(
            f"{self._base}/{charge_point.charge_point_id}",
            subprotocols=[_SUBPROTOCOL],
            additional_headers=headers,
            open_timeout=_OPEN_TIMEOUT_SECONDS,
            max_size=None,
        )
        try:
            await self._call(
                websocket,
                "BootNotification",
                {"chargePointVendor": "energy-ingest", "chargePointModel": "simulator"},
            )
            await self._call(
                websocket,
                "StatusNotification",
                {"connectorId": CONNECTOR, "errorCode": "NoError", "status": "Available"},
            )
        except BaseException:
            await websocket.close()
            raise
        charge_point.websocket = websocket
        self.connections += 1
        return websocket

    async def _call(self, websocket: ClientConnection, action: str, payload: Any) -> Any:
        unique = str(next(self._ids))
        await websocket.send(orjson.dumps([2, unique, action, payload]).decode())
        while True:
            answer = orjson.loads(await websocket.recv())
            if answer[1] == unique:
                break
        if answer[0] == 4:
            raise _CallError(str(answer[2]), str(answer[3]))
        return answer[2]
