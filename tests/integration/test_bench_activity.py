"""The bench's watch of a load (bench/activity.py): cores by process group, and the database's
busy backends sorted by what they run, against a real PostgreSQL and real processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from urllib.parse import urlsplit

import asyncpg

from bench.activity import ACTIVITIES, GROUPS, CoreShares, DatabaseActivity, _activity
from bench.report import render_machine

_SPLIT = "-- Computes again the hours of pending vehicle-days (vehicle_energy_pending)\n"
_INBOX = "-- Takes up to $2 committed inbox rows\n"


async def _sleep_as(url: str, application: str, statement: str) -> None:
    connection = await asyncpg.connect(url, server_settings={"application_name": application})
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def test_busy_backends_are_sorted_by_what_they_run(database_url: str) -> None:
    database = urlsplit(database_url).path.lstrip("/")
    activity = DatabaseActivity(database_url, database)
    await activity.start()
    await asyncio.gather(
        _sleep_as(database_url, "energy-ingest writer", "SELECT pg_sleep(0.5)"),
        _sleep_as(database_url, "energy-ingest writer", _SPLIT + "SELECT pg_sleep(0.5)"),
        _sleep_as(database_url, "energy-ingest reader", "SELECT pg_sleep(0.5)"),
    )
    figures = await activity.stop()

    assert figures["polls"] > 0
    assert set(figures["busy"]) == set(ACTIVITIES)
    assert figures["busy"]["writer"] > 0
    assert figures["busy"]["charging split"] > 0
    assert figures["busy"]["other"] > 0
    assert figures["busy"]["inbox fold"] == 0
    assert figures["total"] >= max(figures["busy"].values())


def test_a_transaction_end_counts_with_what_it_ended() -> None:
    writer = "energy-ingest writer"
    assert _activity(writer, _INBOX + "WITH taken AS (…)", None) == "inbox fold"
    assert _activity(writer, "COMMIT", "inbox fold") == "inbox fold"
    assert _activity(writer, "COMMIT", None) == "writer"
    assert _activity(writer, 'COPY "meter_staging"("seq") FROM STDIN', None) == "writer"
    assert _activity("energy-ingest naive writer", "INSERT INTO meter_readings …", None) == "writer"
    assert _activity("energy-ingest reader", _SPLIT, None) == "other"


def test_cores_are_counted_by_process_group() -> None:
    # A busy child stands for the server (alive when counted: /proc forgets the ended); this
    # process's own loop for the load generator.
    busy = "import time\nend = time.time() + 0.6\nwhile time.time() < end: pass\ntime.sleep(60)"
    child = subprocess.Popen([sys.executable, "-c", busy])
    try:
        shares = CoreShares(child.pid)
        shares.start()
        end = time.monotonic() + 1.0
        while time.monotonic() < end:
            pass
        figures = shares.stop()
    finally:
        child.kill()
        child.wait()

    assert set(figures) == {*GROUPS, "total"}
    assert figures["server"] > 0
    assert figures["load generator"] > 0
    assert figures["total"] >= figures["server"] + figures["load generator"] - 0.02


def test_the_report_has_a_row_per_load_and_dashes_when_the_database_was_not_watched() -> None:
    cores = {**dict.fromkeys(GROUPS, 0.25), "total": 1.25}
    database = {
        "polls": 100,
        "busy": {"writer": 0.5, "inbox fold": 0.0, "charging split": 0.75, "other": 0.0},
        "total": 1.25,
        "waiting_on_io": 0.1,
    }
    text = render_machine(
        [
            ("engine, 1 worker, single", {"cores": cores, "database": database}),
            ("HTTP server alone, single", {"cores": cores}),
        ]
    )
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    assert rows[1].startswith("| engine, 1 worker, single | 0.25 |")
    assert "| 1.25 | 0.50 | 0.00 | 0.75 | 0.00 | 0.10 |" in rows[1]
    assert rows[2].endswith("| 1.25 | — | — | — | — | — |")
