"""`energy-ingest report`: the fleet endpoint's rows, in the terminal or as CSV, from a process."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from datetime import datetime, timedelta
from typing import Any

import httpx

from tests.factories import iso, meter_reading, minute, vehicle_reading

NOW = minute(0)


def _history(kind: str, device_id: str, kwh: float) -> list[dict[str, Any]]:
    moments = [NOW - timedelta(minutes=i) for i in range(1, 91)]
    if kind == "meter":
        return [meter_reading(meter_id=device_id, kwh=kwh, at=at) for at in moments]
    return [vehicle_reading(vehicle_id=device_id, kwh=kwh, at=at) for at in moments]


async def _seed(client: httpx.AsyncClient) -> None:
    """ev-good (90 %), ev-bad (60 %: underperforming), ev-alone (no meter: insufficient data)."""
    for vehicle, meter, ac, dc in [
        ("ev-good", "m-good", 0.1, 0.09),
        ("ev-bad", "m-bad", 0.1, 0.06),
    ]:
        response = await client.put(
            f"/v1/vehicles/{vehicle}/meter",
            json={"meterId": meter, "from": iso(NOW - timedelta(days=1))},
        )
        assert response.status_code == 201, response.text
        for kind, device, kwh in [("meter", meter, ac), ("vehicle", vehicle, dc)]:
            response = await client.post(
                f"/v1/ingest/{kind}/batch", json=_history(kind, device, kwh)
            )
            assert response.status_code == 201, response.text
    response = await client.post(
        "/v1/ingest/vehicle/batch", json=_history("vehicle", "ev-alone", 0.05)
    )
    assert response.status_code == 201, response.text


async def _report(database_url: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The command's output as written: bytes decoded, line ends kept (CSV's are CRLF)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_") and k != "DATABASE_URL"}
    env["EIE_DATABASE_URL"] = database_url
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "energy_ingest", "report", *arguments],
        env=env,
        capture_output=True,
        timeout=120,
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


async def _endpoint(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    response = await client.get("/v1/analytics/fleet/performance", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_report_csv_and_table_equal_the_fleet_endpoint(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _seed(client)
    answer = await _endpoint(client)
    period = answer["period"]
    window = ("--from", period["start"], "--to", period["end"])

    result = await _report(database_url, "--csv", *window)
    assert result.returncode == 0, result.stderr
    assert (
        result.stdout
        == (
            await client.get(
                "/v1/analytics/fleet/performance",
                params={"from": period["start"], "to": period["end"], "format": "csv"},
            )
        ).text
    )
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(row["vehicleId"], row["status"]) for row in rows] == [
        (row["vehicleId"], row["status"]) for row in answer["vehicles"]
    ]
    assert [(row["vehicleId"], row["status"]) for row in rows] == [
        ("ev-bad", "underperforming"),
        ("ev-good", "ok"),
        ("ev-alone", "insufficient-data"),
    ]

    # The default window is the endpoint's: 24 whole hours ending with the current hour.
    result = await _report(database_url, "--csv")
    assert result.returncode == 0, result.stderr
    first = next(csv.DictReader(io.StringIO(result.stdout)))
    start, end = (datetime.fromisoformat(first[k]) for k in ("periodStart", "periodEnd"))
    assert end - start == timedelta(hours=24)
    assert (end.minute, end.second, end.microsecond) == (0, 0, 0)

    table = await _report(database_url, *window)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    summary = answer["summary"]
    assert f"{summary['vehicles']} vehicles, {summary['ok']} ok" in lines[0]
    assert f"{summary['underperforming']} underperforming" in lines[0]
    assert lines[2].split()[:2] == ["VEHICLE", "STATUS"]
    assert [line.split()[:2] for line in lines[3:]] == [
        [row["vehicleId"], row["status"]] for row in answer["vehicles"]
    ]


async def test_report_filters_by_status_like_the_endpoint(
    client: httpx.AsyncClient, database_url: str
) -> None:
    await _seed(client)
    answer = await _endpoint(client, status="underperforming,insufficient-data")
    period = answer["period"]
    result = await _report(
        database_url,
        "--status",
        "underperforming,insufficient-data",
        "--from",
        period["start"],
        "--to",
        period["end"],
    )
    assert result.returncode == 0, result.stderr
    shown = [line.split()[:2] for line in result.stdout.splitlines()[3:]]
    assert shown == [[row["vehicleId"], row["status"]] for row in answer["vehicles"]]
    assert shown == [["ev-bad", "underperforming"], ["ev-alone", "insufficient-data"]]


async def test_a_wrong_status_or_window_is_one_line_and_exit_2(database_url: str) -> None:
    for arguments, option in [
        (("--status", "ok,broken"), "--status"),
        (("--window", "40d"), "--window"),
        (("--from", "2026-01-02T00:00:00Z", "--to", "2026-01-01T00:00:00Z"), "--from"),
    ]:
        result = await _report(database_url, *arguments)
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.stderr
        assert option in errors[0], result.stderr
        assert "Traceback" not in result.stderr
        assert result.stdout == ""
