"""OCPP 1.6J: chargers over real WebSockets (the `ocpp` package as the charge point) against
`energy-ingest serve --ocpp` on a real port, with authentication on, and a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import httpx
import pytest
from ocpp.v16 import call
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.factories import iso, minute
from tests.faults.processes import ocpp_engine
from tests.ocpp_chargers import (
    OCPP16,
    basic,
    create_key,
    meter_rows,
    meter_values,
    metric,
    python_charger,
    raw_call,
    register_value,
    ws_url,
)

pytestmark = pytest.mark.timeout(120)


async def booked(database_url: str, meter_id: str) -> tuple[float, int]:
    """(kWh booked, resets) by the engine's accounting over the meter's whole history."""
    connection = await asyncpg.connect(database_url)
    try:
        row = await connection.fetchrow(
            "SELECT sum(b.kwh)::float8, count(*) FILTER (WHERE b.event = 'reset')::int"
            " FROM (SELECT array_agg(ts ORDER BY ts) AS ts,"
            "              array_agg(kwh_consumed_ac ORDER BY ts) AS interval,"
            "              array_agg(kwh_register_ac ORDER BY ts) AS register"
            "       FROM meter_reading_history WHERE meter_id = $1) AS h,"
            " LATERAL book_readings(h.ts, h.interval, h.register, 1000) AS b",
            meter_id,
        )
    finally:
        await connection.close()
    assert row is not None
    return row[0], row[1]


async def test_boot_a_whole_transaction_in_wh_then_one_in_kwh_after_a_register_reset(
    database_url: str,
) -> None:
    start = minute(-40).astimezone(UTC)
    async with ocpp_engine(database_url, {"EIE_OCPP_HEARTBEAT_SECONDS": "120"}) as engine:
        # Bound to the charge point's id: the key writes every connector of it.
        key = await create_key(engine, ["ingest"], device_id="CP-1")
        async with python_charger(engine, "CP-1", key) as charger:
            boot = await charger.call(
                call.BootNotification(charge_point_model="Wallbox", charge_point_vendor="Test")
            )
            assert (boot.status, boot.interval) == ("Accepted", 120)
            assert (await charger.call(call.Heartbeat())).current_time
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing")
            )
            authorized = await charger.call(call.Authorize(id_tag="TAG-1"))
            assert authorized.id_tag_info["status"] == "Accepted"

            # Transaction 1: register 1000 Wh → 1000 + 10 × 183 Wh, in Wh, every minute.
            started = await charger.call(
                call.StartTransaction(
                    connector_id=1, id_tag="TAG-1", meter_start=1000, timestamp=iso(start)
                )
            )
            first = started.transaction_id
            assert isinstance(first, int)
            await charger.call(
                call.StatusNotification(
                    connector_id=1, error_code="NoError", status="Charging", timestamp=iso(start)
                )
            )
            for step in range(1, 11):
                await charger.call(
                    meter_values(
                        1,
                        first,
                        register_value(
                            start + timedelta(minutes=step),
                            1000 + 183 * step,
                            volts=(229.0, 231.0, 233.0),
                        ),
                    )
                )
            await charger.call(
                call.StopTransaction(
                    meter_stop=1000 + 183 * 11,
                    timestamp=iso(start + timedelta(minutes=11)),
                    transaction_id=first,
                )
            )

            # The meter was replaced: transaction 2 starts from 0, and this charger speaks kWh.
            later = start + timedelta(minutes=20)
            second = (
                await charger.call(
                    call.StartTransaction(
                        connector_id=1, id_tag="TAG-1", meter_start=0, timestamp=iso(later)
                    )
                )
            ).transaction_id
            assert second != first
            for step in range(1, 6):
                await charger.call(
                    meter_values(
                        1,
                        second,
                        register_value(
                            later + timedelta(minutes=step), 0.2 * step, unit="kWh", volts=(228.0,)
                        ),
                    )
                )
            await charger.call(
                call.StopTransaction(
                    meter_stop=1200,
                    timestamp=iso(later + timedelta(minutes=6)),
                    transaction_id=second,
                )
            )
            await charger.call(
                call.StatusNotification(connector_id=1, error_code="NoError", status="Available")
            )

        rows = await meter_rows(database_url, "CP-1:1")
        assert [row[0] for row in rows] == [
            *(start + timedelta(minutes=step) for step in range(12)),
            *(later + timedelta(minutes=step) for step in range(7)),
        ]
        registers = [row[1] for row in rows]
        assert registers[:12] == pytest.approx([(1000 + 183 * step) / 1000 for step in range(12)])
        assert registers[12:] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2])
        # The mean of the phases sent; meterStart before any voltage takes the assumed 230 V,
        # meterStop the connector's last voltage on this connection.
        voltages = [row[3] for row in rows]
        assert voltages[0] == 230.0
        assert voltages[1:12] == [231.0] * 11
        assert voltages[12:] == [231.0, *([228.0] * 6)]
        kwh, resets = await booked(database_url, "CP-1:1")
        assert kwh == pytest.approx(183 * 11 / 1000 + 1.2)
        assert resets == 1

        # Live: the connector's status and its newest meter value, over HTTP.
        async with httpx.AsyncClient(base_url=engine.base_url, headers=engine.headers) as client:
            live = (await client.get("/v1/analytics/meter/CP-1:1/live")).json()
            assert live["kwhRegisterAc"] == pytest.approx(1.2)
            charger_live = (await client.get("/v1/analytics/charger/CP-1/live")).json()
        assert charger_live["chargePointId"] == "CP-1"
        (connector,) = charger_live["connectors"]
        assert connector["connectorId"] == 1
        assert connector["status"] == "Available"
        assert connector["meterId"] == "CP-1:1"
        assert connector["kwhRegisterAc"] == pytest.approx(1.2)
        assert await metric(engine, "eie_ocpp_readings", outcome="stored") == len(rows)
        assert await metric(engine, "eie_ocpp_ignored_samples", measurand="Current.Import") == 15


async def test_wrong_password_and_keys_for_other_devices_are_refused_at_the_upgrade(
    database_url: str,
) -> None:
    async with ocpp_engine(database_url) as engine:
        ingest = await create_key(engine, ["ingest"])
        reader = await create_key(engine, ["read"])
        other = await create_key(engine, ["ingest"], device_id="CP-2")
        vehicle = await create_key(engine, ["ingest"], device_id="CP-1", kind="vehicle")
        one_connector = await create_key(engine, ["ingest"], device_id="CP-1:2")

        async def status_of(authorization: str | None) -> int:
            headers = {"Authorization": authorization} if authorization else {}
            try:
                async with connect(
                    ws_url(engine, "CP-1"), subprotocols=[OCPP16], additional_headers=headers
                ):
                    return 101
            except InvalidStatus as refused:
                return refused.response.status_code

        assert await status_of(None) == 401
        assert await status_of(basic("CP-1", ingest[:-2] + "xx")) == 401  # wrong password
        assert await status_of(basic("CP-1", "not-a-key")) == 401
        assert await status_of(basic("CP-9", ingest)) == 401  # the user is not this charge point
        assert await status_of("Bearer " + ingest) == 401  # profile 1 is Basic
        assert await status_of(basic("CP-1", reader)) == 403  # no ingest scope
        assert await status_of(basic("CP-1", other)) == 403  # bound to another charge point
        assert await status_of(basic("CP-1", vehicle)) == 403  # bound to a vehicle
        assert await status_of(basic("CP-1", ingest)) == 101
        assert await status_of(basic("CP-1", one_connector)) == 101

        # A key bound to one connector's meter writes that connector only.
        async with python_charger(engine, "CP-1", one_connector) as charger:
            for connector in (1, 2):
                await charger.call(
                    meter_values(connector, None, register_value(minute(-3), 5000 + connector))
                )
        assert [row[1] for row in await meter_rows(database_url, "CP-1:2")] == [5.002]
        assert await meter_rows(database_url, "CP-1:1") == []
        assert await metric(engine, "eie_ocpp_readings", outcome="refused") == 1


_BROKEN_METER_VALUES = {
    "connectorId": 1,
    "vendorExtension": {"firmware": "1.0-beta"},  # not in the schema
    "meterValue": [
        {
            "timestamp": None,  # replaced per test
            "sampledValue": [
                {"value": 1234.5, "measurand": "Energy.Active.Import.Register", "unit": "Wh"},
                {"value": "50.0", "measurand": "Voltage", "unit": "Hz"},
                {"value": "231.5", "measurand": "Voltage", "phase": "L1-N", "unit": "V"},
                {"value": "7", "measurand": "Vendor.Special"},
            ],
        }
    ],
}


def _broken(at: datetime) -> dict[str, object]:
    payload = dict(_BROKEN_METER_VALUES)
    element = dict(payload["meterValue"][0])  # type: ignore[index]
    element["timestamp"] = iso(at)
    payload["meterValue"] = [element]
    return payload


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
async def test_a_schema_breaking_charger(database_url: str, strict: bool) -> None:
    environment = {"EIE_OCPP_STRICT": "true"} if strict else {}
    async with ocpp_engine(database_url, environment) as engine:
        key = await create_key(engine, ["ingest"], device_id="CP-X")
        headers = {"Authorization": basic("CP-X", key)}
        async with connect(
            ws_url(engine, "CP-X"), subprotocols=[OCPP16], additional_headers=headers
        ) as websocket:
            answers = [
                await raw_call(websocket, "MeterValues", _broken(minute(-5 + number)))
                for number in range(3)
            ]
        rows = await meter_rows(database_url, "CP-X:1")
        violations = await metric(engine, "eie_ocpp_violations")
        if strict:
            # Refused whole, as the schema says; the charger's retries will be refused too.
            assert [answer[0] for answer in answers] == [4, 4, 4]
            assert answers[0][2] in ("FormatViolation", "TypeConstraintViolation")
            assert rows == []
        else:
            # What can be understood is stored: the register (a number, not the schema's string)
            # and the phase's voltage; the Hz "voltage" and the vendor's measurand are not.
            assert [answer[0] for answer in answers] == [3, 3, 3]
            assert [(row[1], row[3]) for row in rows] == [(1.2345, 231.5)] * 3
            assert await metric(engine, "eie_ocpp_violations", rule="voltage_unit") == 3
            assert await metric(engine, "eie_ocpp_ignored_samples", measurand="other") == 3
        assert violations >= 3 * 3  # extra field, value type, unit enum: every message


async def test_a_charge_point_that_reconnects_replaces_its_older_connection(
    database_url: str,
) -> None:
    async with ocpp_engine(database_url) as engine:
        key = await create_key(engine, ["ingest"], device_id="CP-R")
        headers = {"Authorization": basic("CP-R", key)}
        url = ws_url(engine, "CP-R")
        async with connect(url, subprotocols=[OCPP16], additional_headers=headers) as older:
            assert (await raw_call(older, "Heartbeat", {}))[0] == 3
            async with connect(url, subprotocols=[OCPP16], additional_headers=headers) as newer:
                with pytest.raises(ConnectionClosed):
                    await older.recv()
                assert older.close_reason == "replaced by a newer connection"
                assert (await raw_call(newer, "Heartbeat", {}))[0] == 3
