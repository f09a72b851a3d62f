"""SQL of the history export: one COPY … TO STDOUT per kind and format, streamed to a callback."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Any, Literal

from energy_ingest.db.pool import AnyConnection
from energy_ingest.db.sql import sql
from energy_ingest.readings import DeviceKind

ExportFormat = Literal["csv", "jsonl"]

_QUERIES: dict[tuple[DeviceKind, ExportFormat], str] = {
    (DeviceKind.METER, "csv"): sql("export_meter_readings_csv"),
    (DeviceKind.METER, "jsonl"): sql("export_meter_readings_jsonl"),
    (DeviceKind.VEHICLE, "csv"): sql("export_vehicle_readings_csv"),
    (DeviceKind.VEHICLE, "jsonl"): sql("export_vehicle_readings_jsonl"),
}


async def export_readings(
    connection: AnyConnection,
    kind: DeviceKind,
    start: datetime,
    end: datetime,
    device_id: str | None,
    export_format: ExportFormat,
    output: Callable[[bytes], Coroutine[Any, Any, None]],
) -> None:
    """Stream the readings of `kind` in [start, end) (of `device_id` alone, if given) to
    `output`, a page of rows at a time: memory stays constant on both sides."""
    await connection.execute(sql("set_shortest_float_output"))
    csv = export_format == "csv"
    await connection.copy_from_query(
        _QUERIES[kind, export_format],
        start,
        end,
        device_id,
        output=output,
        format="csv" if csv else "text",
        header=csv or None,
    )
