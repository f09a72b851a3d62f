"""OCPP under faults: kill -9 of the engine, and PostgreSQL stopped, while chargers run
transactions.

Chargers send their register every step over OCPP-J and count a MeterValues (or a StopTransaction)
as acknowledged only once its CALLRESULT arrived; on a CALLERROR or a broken connection they
reconnect and send the same message again, as OCPP 1.6 asks of transaction messages. The engine
answers only after the commit, so every acknowledged value must be stored whatever is killed.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from energy_ingest.db.embedded import EmbeddedServer
from tests.factories import iso
from tests.faults.processes import EngineProcess, ocpp_engine
from tests.figures import RecordFigures
from tests.ocpp_chargers import OCPP16, basic, create_key, metric, ws_url

pytestmark = pytest.mark.timeout(180)

CHARGERS = 6
ROUNDS = 2
_ACKNOWLEDGED_PER_ROUND = 400
_SETTLE_SECONDS = 60.0  # liveness bound for a charger to get its message through


class _Refused(Exception):
    """A CALLERROR: the charger keeps the message and sends it again."""


@dataclass
class FaultCharger:
    """One charge point sending its register every second of its own clock, forever."""

    charge_point_id: str
    password: str
    engine: EngineProcess
    start: datetime
    acknowledged: dict[datetime, float] = field(default_factory=dict)
    call_errors: int = 0
    reconnects: int = 0
    running: bool = True

    async def _call(self, websocket: ClientConnection, action: str, payload: Any) -> Any:
        unique = str(uuid.uuid4())
        await websocket.send(json.dumps([2, unique, action, payload]))
        while True:
            answer = json.loads(await websocket.recv())
            if answer[1] == unique:
                break
        if answer[0] == 4:
            self.call_errors += 1
            raise _Refused(answer[2])
        return answer[2]

    async def run(self) -> None:
        step = 0
        transaction: int | None = None
        while self.running:
            try:
                async with connect(
                    ws_url(self.engine, self.charge_point_id),
                    subprotocols=[OCPP16],
                    additional_headers={
                        "Authorization": basic(self.charge_point_id, self.password)
                    },
                    open_timeout=2,
                ) as websocket:
                    await self._call(
                        websocket,
                        "BootNotification",
                        {"chargePointVendor": "faults", "chargePointModel": "kill-9"},
                    )
                    if transaction is None:
                        started = await self._call(
                            websocket,
                            "StartTransaction",
                            {
                                "connectorId": 1,
                                "idTag": "FAULT",
                                "meterStart": self._wh(step),
                                "timestamp": iso(self._at(step)),
                            },
                        )
                        transaction = started["transactionId"]
                        self.acknowledged[self._at(step)] = self._wh(step) / 1000
                    while self.running:
                        next_step = step + 1
                        await self._call(
                            websocket,
                            "MeterValues",
                            {
                                "connectorId": 1,
                                "transactionId": transaction,
                                "meterValue": [self._element(next_step)],
                            },
                        )
                        step = next_step  # only now: a refused or lost one is sent again
                        self.acknowledged[self._at(step)] = self._wh(step) / 1000
                    await self._call(
                        websocket,
                        "StopTransaction",
                        {
                            "transactionId": transaction,
                            "meterStop": self._wh(step + 1),
                            "timestamp": iso(self._at(step + 1)),
                        },
                    )
                    self.acknowledged[self._at(step + 1)] = self._wh(step + 1) / 1000
                    return
            except (_Refused, WebSocketException, OSError, TimeoutError):
                self.reconnects += 1
                await asyncio.sleep(0.05)

    def _at(self, step: int) -> datetime:
        return self.start + timedelta(seconds=step)

    @staticmethod
    def _wh(step: int) -> int:
        return 100_000 + 10 * step

    def _element(self, step: int) -> dict[str, Any]:
        return {
            "timestamp": iso(self._at(step)),
            "sampledValue": [
                {"value": str(self._wh(step)), "measurand": "Energy.Active.Import.Register"},
                {"value": "231.0", "measurand": "Voltage", "unit": "V"},
            ],
        }


async def lost(database_url: str, chargers: list[FaultCharger]) -> list[tuple[str, datetime]]:
    """Acknowledged register values that are not in history (with the value acknowledged)."""
    connection = await asyncpg.connect(database_url)
    try:
        missing = []
        for charger in chargers:
            rows = await connection.fetch(
                "SELECT ts, kwh_register_ac FROM meter_reading_history WHERE meter_id = $1",
                f"{charger.charge_point_id}:1",
            )
            stored = {row[0]: row[1] for row in rows}
            for moment, register in list(charger.acknowledged.items()):
                if stored.get(moment) != pytest.approx(register):
                    missing.append((charger.charge_point_id, moment))
        return missing
    finally:
        await connection.close()


def acknowledged(chargers: list[FaultCharger]) -> int:
    return sum(len(charger.acknowledged) for charger in chargers)


async def wait_acknowledged(chargers: list[FaultCharger], target: int) -> None:
    deadline = time.monotonic() + _SETTLE_SECONDS
    while acknowledged(chargers) < target:
        assert time.monotonic() < deadline, "the chargers stopped getting answers"
        await asyncio.sleep(0.02)


async def test_kill_9_during_transactions_loses_no_acknowledged_meter_value(
    database_url: str, record_figures: RecordFigures
) -> None:
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    async with ocpp_engine(database_url) as engine:
        key = await create_key(engine, ["ingest"])
        chargers = [
            FaultCharger(f"KILL-{number}", key, engine, start) for number in range(CHARGERS)
        ]
        tasks = [asyncio.create_task(charger.run()) for charger in chargers]
        try:
            for _ in range(ROUNDS):
                await wait_acknowledged(chargers, acknowledged(chargers) + _ACKNOWLEDGED_PER_ROUND)
                engine.kill_hard()
                # With the engine dead, the database alone holds everything acknowledged.
                assert await lost(database_url, chargers) == []
                await engine.start()
            await wait_acknowledged(chargers, acknowledged(chargers) + _ACKNOWLEDGED_PER_ROUND)
            for charger in chargers:
                charger.running = False
            await asyncio.wait_for(asyncio.gather(*tasks), _SETTLE_SECONDS)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert await lost(database_url, chargers) == []
        assert await engine.terminate() == 0
    record_figures(
        {
            "OCPP kill -9 rounds": ROUNDS,
            "OCPP meter values acknowledged": acknowledged(chargers),
            "OCPP acknowledged values lost": 0,
            "OCPP reconnects (engine killed)": sum(charger.reconnects for charger in chargers),
        }
    )


@pytest.fixture
def own_postgres() -> Iterator[tuple[EmbeddedServer, str]]:
    """A PostgreSQL of the test's own (it is stopped), whatever TEST_DATABASE_URL says."""
    folder = Path(tempfile.mkdtemp(prefix="eie-ocpp-"))  # short: the socket lives in it
    server = EmbeddedServer(folder / "data", durable=True)
    try:
        yield server, server.start()
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


async def test_while_the_database_is_down_chargers_get_call_errors_and_lose_nothing(
    own_postgres: tuple[EmbeddedServer, str], record_figures: RecordFigures
) -> None:
    server, url = own_postgres
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=6)
    async with ocpp_engine(url) as engine:
        key = await create_key(engine, ["ingest"])
        chargers = [FaultCharger(f"DOWN-{number}", key, engine, start) for number in range(3)]
        tasks = [asyncio.create_task(charger.run()) for charger in chargers]
        try:
            await wait_acknowledged(chargers, _ACKNOWLEDGED_PER_ROUND)
            await asyncio.to_thread(
                subprocess.run,
                [str(server.bin / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate", "-w",
                 "stop"],
                user=server.user, stdin=subprocess.DEVNULL, capture_output=True, check=True,
                timeout=60,
            )  # fmt: skip
            during = acknowledged(chargers)
            deadline = time.monotonic() + _SETTLE_SECONDS
            while sum(charger.call_errors for charger in chargers) < len(chargers):
                assert time.monotonic() < deadline, "no CALLERROR while the database was down"
                await asyncio.sleep(0.05)
            # Nothing is acknowledged while nothing can be committed (at most what was already
            # committed when the database stopped and answered in the same instant).
            assert acknowledged(chargers) - during <= len(chargers)
            assert await asyncio.to_thread(server.start) == url
            await wait_acknowledged(chargers, acknowledged(chargers) + _ACKNOWLEDGED_PER_ROUND)
            for charger in chargers:
                charger.running = False
            await asyncio.wait_for(asyncio.gather(*tasks), _SETTLE_SECONDS)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        assert engine.alive(), engine.output()
        assert await lost(url, chargers) == []
        answered = await metric(engine, "eie_ocpp_messages", action="MeterValues", answer="error")
        assert answered >= sum(charger.call_errors for charger in chargers) > 0
        assert await engine.terminate() == 0
    record_figures(
        {
            "OCPP (database down) meter values acknowledged": acknowledged(chargers),
            "OCPP (database down) acknowledged values lost": 0,
            "OCPP (database down) CALLERRORs answered": sum(c.call_errors for c in chargers),
        }
    )
