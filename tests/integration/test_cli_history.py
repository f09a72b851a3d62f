"""`energy-ingest import` and `export`: history in and out, against a real PostgreSQL.

The commands run in process through click's CliRunner (in a thread: each runs its own event
loop, as from a shell), the error boundary's one-line failures through a real process.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import click
import httpx
import orjson
from click.testing import CliRunner, Result

from energy_ingest.cli.history import REJECTED_EXIT_CODE, export, import_readings
from tests.factories import iso, meter_reading, minute, vehicle_reading
from tests.integration.writer.test_rollups import assert_rollups_match_history
from tests.support import DatabaseServer, create_database, drop_database, with_database

NOW = minute(0)
YEAR_AGO = NOW - timedelta(days=365)
HEADER = "meterId,kwhConsumedAc,voltage,vehicleId,soc,kwhDeliveredDc,batteryTemp,timestamp"


def _invoke(
    command: click.Command,
    database_url: str,
    *arguments: str,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    return CliRunner().invoke(
        command,
        [*arguments, "--database-url", database_url],
        input=stdin,
        env=env,
        catch_exceptions=False,
    )


async def run_import(database_url: str, *arguments: str, **options: Any) -> Result:
    return await asyncio.to_thread(_invoke, import_readings, database_url, *arguments, **options)


async def run_export(database_url: str, *arguments: str) -> Result:
    return await asyncio.to_thread(_invoke, export, database_url, *arguments)


def summary(result: Result) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(result.stdout)
    document.pop("seconds")
    return document


def counts(
    received: int, stored: int, duplicates: int = 0, conflicts: int = 0, rejected: int = 0
) -> dict[str, int]:
    return {
        "received": received,
        "successful": stored + duplicates,
        "failed": conflicts + rejected,
        "stored": stored,
        "duplicates": duplicates,
        "conflicts": conflicts,
        "rejected": rejected,
    }


def rejects_of(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_bytes(b"".join(orjson.dumps(item) + b"\n" for item in items))
    return path


async def history(db: asyncpg.Connection) -> list[tuple[Any, ...]]:
    """Every stored reading of both kinds, ids spelled out, values as stored."""
    meters = await db.fetch(
        "SELECT meter_id, ts, kwh_consumed_ac, voltage FROM meter_reading_history ORDER BY 1, 2"
    )
    vehicles = await db.fetch(
        "SELECT v.vehicle_id, r.ts, r.soc, r.kwh_delivered_dc, r.battery_temp"
        " FROM vehicle_readings AS r JOIN vehicles AS v USING (vehicle_key) ORDER BY 1, 2"
    )
    return [("meter", *row.values()) for row in meters] + [
        ("vehicle", *row.values()) for row in vehicles
    ]


# --- import: validation ------------------------------------------------------------------------


async def test_a_csv_with_bad_lines_stores_the_good_ones_and_names_each_bad_one(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    old, future = iso(YEAR_AGO), iso(NOW + timedelta(hours=1))
    lines = [
        HEADER,
        f"M-1,1.25,230.4,,,,,{old}",  # 2: a year old: accepted
        f",,,V-1,57.5,1.05,31.2,{old}",  # 3: a vehicle row in the same file
        f"M-1,-1,230,,,,,{iso(YEAR_AGO + timedelta(minutes=1))}",  # 4: range
        f"M-2,abc,230,,,,,{old}",  # 5: a number that is not one
        "M-3,1,230,,,,,2025-13-01T00:00:00Z",  # 6: not a date
        f"M-4,1,230,,,,,{future}",  # 7: the future is still refused
        f"M 5,1,230,,,,,{old}",  # 8: an id with a space
        f"M-6,,230,,,,,{old}",  # 9: a required field left empty
        f"M-7,1,230,,,,,{old},extra",  # 10: one cell too many
        f",,,V-2,101,1,20,{old}",  # 11: soc over 100
        f"M-8,1,230,V-8,50,1,20,{old}",  # 12: both ids
        "",  # 13: blank lines are skipped
        f"M-9,0.5,231,,,,,{iso(NOW - timedelta(minutes=2))}",  # 14: recent: accepted
    ]
    source = tmp_path / "readings.csv"
    source.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"

    result = await run_import(database_url, str(source), "--rejects", str(rejects), "--json")

    assert result.exit_code == REJECTED_EXIT_CODE, result.output
    assert summary(result) == counts(received=12, stored=3, rejected=9)
    assert result.stderr == ""  # not a terminal: no progress line
    found = {
        entry["line"]: [(field["field"], field["rule"]) for field in entry["fields"]]
        for entry in rejects_of(rejects)
    }
    assert found == {
        4: [("kwhConsumedAc", "range")],
        5: [("kwhConsumedAc", "type")],
        6: [("timestamp", "format")],
        7: [("timestamp", "not_in_future")],
        8: [("meterId", "pattern")],
        9: [("kwhConsumedAc", "required")],
        10: [("body", "columns")],
        11: [("soc", "range")],
        12: [("meterId|vehicleId", "one_kind")],
    }
    first = rejects_of(rejects)[0]
    assert first == {
        "line": 4,
        "reason": "invalid",
        "message": "kwhConsumedAc: must be between 0 and 100",
        "fields": [
            {"field": "kwhConsumedAc", "rule": "range", "message": "must be between 0 and 100"}
        ],
        "input": lines[3],
    }
    stored = await history(db)
    assert [(row[0], row[1], row[2]) for row in stored] == [
        ("meter", "M-1", YEAR_AGO),
        ("meter", "M-9", NOW - timedelta(minutes=2)),
        ("vehicle", "V-1", YEAR_AGO),
    ]


async def test_the_messages_are_those_of_the_http_batch_answer(
    client: httpx.AsyncClient, database_url: str, tmp_path: Path
) -> None:
    items: list[Any] = [
        meter_reading(meter_id="M-1", kwh=-1),
        {**vehicle_reading(vehicle_id="V-1"), "soc": "57"},
        meter_reading(meter_id="M-2", at=NOW + timedelta(hours=1)),
        meter_reading(meter_id="M-3", colour="red"),
        {"meterId": "M-4"},
        [1, 2],
    ]
    answer = (await client.post("/v1/ingest", json=items)).json()
    source = write_jsonl(tmp_path / "bad.jsonl", items)
    rejects = tmp_path / "rejects.jsonl"
    result = await run_import(database_url, str(source), "--rejects", str(rejects))
    assert result.exit_code == REJECTED_EXIT_CODE
    assert [(entry["message"], entry["fields"]) for entry in rejects_of(rejects)] == [
        (error["message"], error["fields"]) for error in answer["errors"]
    ]
    assert [entry["line"] for entry in rejects_of(rejects)] == [1, 2, 3, 4, 5, 6]


async def test_json_lines_of_both_kinds_and_lines_that_are_not_json(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    source = tmp_path / "mixed.jsonl"
    source.write_bytes(
        orjson.dumps(meter_reading(meter_id="M-1", at=YEAR_AGO))
        + b"\n"
        + orjson.dumps(vehicle_reading(vehicle_id="V-1", at=YEAR_AGO))
        + b"\n{not json\n\n"
        + orjson.dumps(vehicle_reading(vehicle_id="V-2", at=YEAR_AGO))
        + b"\r\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    result = await run_import(database_url, str(source), "--rejects", str(rejects), "--json")
    assert result.exit_code == REJECTED_EXIT_CODE
    assert summary(result) == counts(received=4, stored=3, rejected=1)
    (bad,) = rejects_of(rejects)
    assert (bad["line"], bad["fields"][0]["field"], bad["fields"][0]["rule"]) == (3, "body", "json")
    assert bad["input"] == "{not json"
    assert [row[:2] for row in await history(db)] == [
        ("meter", "M-1"),
        ("vehicle", "V-1"),
        ("vehicle", "V-2"),
    ]


async def test_standard_input_is_read_with_dash_and_the_text_summary_says_it_all(
    database_url: str, db: asyncpg.Connection
) -> None:
    body = "meterId,kwhConsumedAc,voltage,timestamp\n" + "".join(
        f"M-1,0.5,230,{iso(YEAR_AGO + timedelta(minutes=i))}\n" for i in range(5)
    )
    result = await run_import(database_url, "-", stdin=body.encode())
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("5 lines: 5 stored, 0 duplicates, 0 conflicts, 0 rejected;")
    assert await db.fetchval("SELECT count(*) FROM meter_readings") == 5


async def test_without_a_rejects_file_the_first_bad_lines_are_shown(
    database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "bad.csv"
    source.write_text(
        "meterId,kwhConsumedAc,voltage,timestamp\n"
        + "".join(f"M-1,-1,230,{iso(YEAR_AGO + timedelta(minutes=i))}\n" for i in range(12))
    )
    result = await run_import(database_url, str(source))
    assert result.exit_code == REJECTED_EXIT_CODE
    shown = result.stderr.splitlines()
    assert shown[0] == "line 2: kwhConsumedAc: must be between 0 and 100 (range)"
    assert len(shown) == 11
    assert shown[-1] == "… and 2 more not stored: --rejects FILE lists them"


async def test_a_reading_retention_would_drop_is_refused_with_its_own_rule(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    kept = NOW - timedelta(days=45)  # older than the HTTP back-fill window, inside retention
    dropped = NOW - timedelta(days=70)
    source = write_jsonl(
        tmp_path / "old.jsonl",
        [meter_reading(meter_id="M-1", at=kept), meter_reading(meter_id="M-1", at=dropped)],
    )
    rejects = tmp_path / "rejects.jsonl"
    result = await run_import(
        database_url,
        str(source),
        "--rejects",
        str(rejects),
        "--json",
        env={"EIE_RETENTION_DAYS": "60"},
    )
    assert summary(result) == counts(received=2, stored=1, rejected=1)
    (refused,) = rejects_of(rejects)
    assert (refused["line"], refused["fields"][0]["rule"]) == (2, "retention")
    assert "retention window of 60 days" in refused["message"]
    assert await db.fetchval("SELECT ts FROM meter_readings") == kept


async def test_a_header_no_reading_fits_is_refused_in_one_line_before_anything_is_stored(
    database_url: str, tmp_path: Path
) -> None:
    source = tmp_path / "wrong.csv"
    source.write_text(f"meterId,kwh,voltage,timestamp\nM-1,1,230,{iso(YEAR_AGO)}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_") and k != "DATABASE_URL"}
    env["EIE_DATABASE_URL"] = database_url
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "energy_ingest", "import", str(source)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("Error: the CSV header names 'kwh', which no reading has")
    )


# --- import: duplicates, conflicts, rollups ------------------------------------------------


async def test_importing_a_file_again_stores_nothing_and_conflicts_keep_the_stored_reading(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    readings = [
        meter_reading(meter_id=f"M-{n % 3}", kwh=0.1 * n, at=YEAR_AGO + timedelta(minutes=n))
        for n in range(30)
    ] + [
        vehicle_reading(vehicle_id="V-1", temp=31.2, at=YEAR_AGO + timedelta(minutes=n))
        for n in range(5)
    ]
    source = write_jsonl(tmp_path / "first.jsonl", readings)
    first = await run_import(database_url, str(source), "--json")
    assert first.exit_code == 0
    assert summary(first) == counts(received=35, stored=35)
    before = await db.fetch("SELECT * FROM meter_readings ORDER BY meter_key, ts")

    again = await run_import(database_url, str(source), "--json")
    assert again.exit_code == 0
    assert summary(again) == counts(received=35, stored=0, duplicates=35)
    assert await db.fetch("SELECT * FROM meter_readings ORDER BY meter_key, ts") == before

    changed = [{**readings[4], "kwhConsumedAc": 9.0}, readings[5]]
    rejects = tmp_path / "rejects.jsonl"
    source = write_jsonl(tmp_path / "changed.jsonl", changed)
    result = await run_import(database_url, str(source), "--rejects", str(rejects), "--json")
    assert result.exit_code == REJECTED_EXIT_CODE
    assert summary(result) == counts(received=2, stored=0, duplicates=1, conflicts=1)
    (conflict,) = rejects_of(rejects)
    assert conflict["line"] == 1
    assert conflict["reason"] == "conflict"
    assert conflict["fields"][0]["rule"] == "conflict"
    assert conflict["message"] == (
        f"meterId M-1 already has a different reading at {readings[4]['timestamp']};"
        " the stored one is kept"
    )
    assert await db.fetch("SELECT * FROM meter_readings ORDER BY meter_key, ts") == before


async def test_a_repeated_key_is_decided_against_the_earlier_line_across_transactions(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    at = YEAR_AGO
    lines = [
        meter_reading(meter_id="M-0", at=at),
        meter_reading(meter_id="M-1", kwh=1.0, at=at),
        meter_reading(meter_id="M-1", kwh=7.0, at=at),  # line 3: the next batch, other values
        meter_reading(meter_id="M-2", at=at),
        meter_reading(meter_id="M-2", at=at),  # line 5: the next batch, the same values
        meter_reading(meter_id="M-3", at=at),
    ]
    source = write_jsonl(tmp_path / "repeats.jsonl", lines)
    rejects = tmp_path / "rejects.jsonl"
    # Transactions of two lines, two in flight: each repeat is in the batch after its first.
    result = await run_import(
        database_url,
        str(source),
        "--rejects",
        str(rejects),
        "--json",
        env={"EIE_WRITER_BATCH_SIZE": "2"},
    )
    assert summary(result) == counts(received=6, stored=4, duplicates=1, conflicts=1)
    assert [entry["line"] for entry in rejects_of(rejects)] == [3]
    assert (
        await db.fetchval(
            "SELECT kwh_consumed_ac FROM meter_reading_history WHERE meter_id = 'M-1'"
        )
        == 1.0
    )


async def test_the_rollups_equal_history_when_the_import_returns(
    database_url: str, db: asyncpg.Connection, tmp_path: Path
) -> None:
    readings: list[dict[str, Any]] = []
    for day in (400, 200, 3):
        start = NOW - timedelta(days=day)
        readings += [
            meter_reading(meter_id=f"M-{n % 4}", kwh=0.01 * n, at=start + timedelta(minutes=n))
            for n in range(150)
        ]
        readings += [
            vehicle_reading(
                vehicle_id=f"V-{n % 4}", temp=20 + n / 10, at=start + timedelta(minutes=n)
            )
            for n in range(150)
        ]
    source = write_jsonl(tmp_path / "days.jsonl", readings)
    result = await run_import(database_url, str(source), "--json")
    assert summary(result) == counts(received=900, stored=900)
    # Folded by the import itself: nothing is left waiting in the inbox.
    assert await db.fetchval("SELECT count(*) FROM meter_rollup_inbox") == 0
    assert await db.fetchval("SELECT count(*) FROM vehicle_rollup_inbox") == 0
    assert await assert_rollups_match_history(db) > 0


# --- export ---------------------------------------------------------------------------------

_SENT = [
    meter_reading(meter_id="M-1", kwh=1.2, voltage=230.4, at=YEAR_AGO),
    meter_reading(meter_id="M-1", kwh=0.1, voltage=229, at=YEAR_AGO + timedelta(minutes=1)),
    meter_reading(meter_id="M-2", kwh=1e-05, voltage=231.25, at=YEAR_AGO),
    {
        **meter_reading(meter_id="M-2", kwh=83.5145, voltage=230),
        "timestamp": iso(YEAR_AGO + timedelta(minutes=1, microseconds=123456)),
    },
    vehicle_reading(vehicle_id="V-1", soc=57.5, kwh=1.05, temp=31.2, at=YEAR_AGO),
    vehicle_reading(
        vehicle_id="V-1", soc=0.1, kwh=0, temp=-12.7, at=YEAR_AGO + timedelta(minutes=1)
    ),
    vehicle_reading(vehicle_id="V-2", soc=99.99, kwh=2.5, temp=36.6, at=YEAR_AGO),
]


def _cell(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def expected_csv(kind: str, device: str | None = None) -> str:
    id_field = "meterId" if kind == "meter" else "vehicleId"
    rows = [body for body in _SENT if id_field in body and device in (None, body[id_field])]
    # The register comes last, empty where the reading sent none.
    register = "kwhRegisterAc" if kind == "meter" else "kwhRegisterDc"
    columns = [*rows[0], register]
    lines = [",".join(columns)] + [
        ",".join(_cell(row[c]) if c in row else "" for c in columns) for row in rows
    ]
    return "".join(line + "\n" for line in lines)


async def test_export_writes_the_readings_as_they_were_sent(
    database_url: str, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "sent.jsonl", _SENT)
    assert (await run_import(database_url, str(source))).exit_code == 0
    window = ("--from", iso(YEAR_AGO), "--to", iso(YEAR_AGO + timedelta(minutes=2)))

    meters = await run_export(database_url, "--kind", "meter", *window)
    assert meters.exit_code == 0, meters.output
    assert meters.stdout == expected_csv("meter")
    assert meters.stdout.splitlines()[4] == f"M-2,83.5145,230,{_SENT[3]['timestamp']},"
    assert _SENT[3]["timestamp"].endswith(".123456Z")
    vehicles = await run_export(database_url, "--kind", "vehicle", *window)
    assert vehicles.stdout == expected_csv("vehicle")

    lines = await run_export(database_url, "--kind", "vehicle", "--format", "jsonl", *window)
    assert [orjson.loads(line) for line in lines.stdout.splitlines()] == _SENT[4:]
    assert lines.stdout.splitlines()[0] == (
        '{"vehicleId":"V-1","soc":57.5,"kwhDeliveredDc":1.05,"batteryTemp":31.2,'
        f'"timestamp":"{iso(YEAR_AGO)}"}}'
    )

    one = await run_export(database_url, "--kind", "vehicle", "--device", "V-2", *window)
    assert one.stdout == expected_csv("vehicle", "V-2")
    empty = await run_export(
        database_url, "--kind", "meter", "--from", iso(NOW - timedelta(days=1)), "--to", iso(NOW)
    )
    assert empty.stdout == "meterId,kwhConsumedAc,voltage,timestamp,kwhRegisterAc\n"
    nothing = await run_export(
        database_url, "--kind", "meter", "--format", "jsonl", "--from", iso(NOW - timedelta(days=1))
    )
    assert (nothing.exit_code, nothing.stdout) == (0, "")
    assert next(iter(csv.DictReader(io.StringIO(meters.stdout))))["meterId"] == "M-1"


async def test_export_refuses_a_window_that_ends_before_it_starts_and_a_bad_device_id(
    database_url: str,
) -> None:
    backwards = await run_export(
        database_url, "--kind", "meter", "--from", iso(NOW), "--to", iso(NOW - timedelta(hours=1))
    )
    assert backwards.exit_code == 2
    assert "--to" in backwards.stderr
    assert "must be after --from" in backwards.stderr
    bad = await run_export(database_url, "--kind", "meter", "--from", iso(NOW), "--device", "a b")
    assert bad.exit_code == 2
    assert "--device" in bad.stderr


async def test_an_export_re_imports_as_duplicates_and_rebuilds_the_same_history_elsewhere(
    database_url: str, db: asyncpg.Connection, test_server: DatabaseServer, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "sent.jsonl", _SENT)
    assert (await run_import(database_url, str(source))).exit_code == 0
    window = ("--from", iso(YEAR_AGO - timedelta(days=1)), "--to", iso(NOW))
    files = {}
    for kind in ("meter", "vehicle"):
        for export_format in ("csv", "jsonl"):
            result = await run_export(
                database_url, "--kind", kind, "--format", export_format, *window
            )
            path = tmp_path / f"{kind}.{export_format}"
            path.write_text(result.stdout)
            files[kind, export_format] = path

    for path in files.values():
        again = await run_import(database_url, str(path), "--json")
        assert again.exit_code == 0, again.output
        assert summary(again)["duplicates"] == summary(again)["received"] > 0

    fresh_name = f"{test_server.prefix}_fresh_{os.getpid()}"
    await create_database(test_server.admin_url, fresh_name, template=test_server.template)
    fresh_url = with_database(test_server.admin_url, fresh_name)
    try:
        for kind in ("meter", "vehicle"):
            result = await run_import(fresh_url, str(files[kind, "csv"]), "--json")
            assert summary(result)["stored"] == summary(result)["received"]
        fresh = await asyncpg.connect(fresh_url)
        try:
            assert await history(fresh) == await history(db)
            for kind in ("meter", "vehicle"):
                exported = await run_export(fresh_url, "--kind", kind, *window)
                assert exported.stdout == files[kind, "csv"].read_text()
        finally:
            await fresh.close()
    finally:
        await drop_database(test_server.admin_url, fresh_name)


async def test_register_readings_go_out_and_back_in_as_they_were_sent(
    database_url: str, tmp_path: Path
) -> None:
    at = [iso(YEAR_AGO + timedelta(minutes=index)) for index in range(3)]
    sent = [
        {"meterId": "M-R", "kwhRegisterAc": 1200.5, "voltage": 231.0, "timestamp": at[0]},
        {
            "meterId": "M-R",
            "kwhConsumedAc": 0.25,
            "kwhRegisterAc": 1200.75,
            "voltage": 231.0,
            "timestamp": at[1],
        },
        {"meterId": "M-R", "kwhConsumedAc": 0.25, "voltage": 231.0, "timestamp": at[2]},
        {
            "vehicleId": "V-R",
            "soc": 50.0,
            "kwhRegisterDc": 88.125,
            "batteryTemp": 30.0,
            "timestamp": at[0],
        },
    ]
    source = write_jsonl(tmp_path / "registers.jsonl", sent)
    assert (await run_import(database_url, str(source))).exit_code == 0
    window = ("--from", iso(YEAR_AGO), "--to", iso(YEAR_AGO + timedelta(minutes=5)))

    meters = await run_export(database_url, "--kind", "meter", "--format", "jsonl", *window)
    vehicles = await run_export(database_url, "--kind", "vehicle", "--format", "jsonl", *window)
    assert [orjson.loads(line) for line in meters.stdout.splitlines()] == sent[:3]
    assert [orjson.loads(line) for line in vehicles.stdout.splitlines()] == sent[3:]
    as_csv = await run_export(database_url, "--kind", "meter", *window)
    assert as_csv.stdout.splitlines()[1] == f"M-R,,231,{at[0]},1200.5"

    exported = tmp_path / "exported.jsonl"
    exported.write_text(meters.stdout + vehicles.stdout)
    again = await run_import(database_url, str(exported), "--json")
    assert again.exit_code == 0, again.output
    assert orjson.loads(again.stdout)["duplicates"] == 4
