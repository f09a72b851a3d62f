"""History's rows stay within the bytes a reading's budget allows.

A heap row costs its size rounded up to 8 bytes, plus a 4-byte line pointer. An interval or a
register-only reading is 60 or 64 bytes: 68 on the page, 120 rows to a page. A column that
pushes either past 64 costs 8 bytes more for every reading ever stored (about 230 MB a day for
10,000 meters and as many vehicles), so the migrated schema is checked here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg
import pytest

_AT = datetime(2026, 12, 5, 12, 0, tzinfo=UTC).isoformat()

_METER = {"ts": _AT, "received_at": _AT, "voltage": 230.4, "meter_key": 1}
_VEHICLE = {"ts": _AT, "received_at": _AT, "soc": 57.5, "battery_temp": 31.2, "vehicle_key": 1}

# (table, the row's values, the bytes it takes on a heap page)
_ROWS = [
    ("meter_readings", _METER | {"kwh_consumed_ac": 1.2}, 68),
    ("meter_readings", _METER | {"kwh_register_ac": 18250.4}, 68),
    ("meter_readings", _METER | {"kwh_consumed_ac": 1.2, "kwh_register_ac": 18250.4}, 76),
    ("vehicle_readings", _VEHICLE | {"kwh_delivered_dc": 1.05}, 68),
    ("vehicle_readings", _VEHICLE | {"kwh_register_dc": 9120.5}, 68),
    ("vehicle_readings", _VEHICLE | {"kwh_delivered_dc": 1.05, "kwh_register_dc": 9120.5}, 76),
]


def _on_page(size: int) -> int:
    """What a row of `size` bytes takes on a heap page: aligned to 8, and its line pointer."""
    return (size + 7) // 8 * 8 + 4


@pytest.mark.parametrize(("table", "values", "expected"), _ROWS)
async def test_a_history_row_is_as_small_as_its_values_allow(
    db: asyncpg.Connection, table: str, values: dict[str, object], expected: int
) -> None:
    # A row of the table's own composite type is laid out as the heap tuple is (same header,
    # null bitmap and alignment), so its size is the tuple's without writing a partition.
    size = await db.fetchval(
        f"SELECT pg_column_size(jsonb_populate_record(NULL::{table}, $1::jsonb))",
        json.dumps(values),
    )
    assert _on_page(size) == expected, f"{table} row of {size} bytes"
