"""Silent devices: the parameters of the list (an ISO 8601 duration, an opaque cursor)."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from energy_ingest.db.pool import ReadConnection
from energy_ingest.errors import FieldProblem, ValidationFailed
from energy_ingest.live import repository
from energy_ingest.live.rows import SilentDeviceRow

KINDS = ("meter", "vehicle")
DEFAULT_SILENT_FOR = "PT15M"
MAX_SILENT_FOR = timedelta(days=3660)  # ten years: far beyond any retention

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d{1,6})W)?(?:(?P<days>\d{1,6})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,8})H)?(?:(?P<minutes>\d{1,10})M)?"
    r"(?:(?P<seconds>\d{1,12}(?:[.,]\d{1,6})?)S)?)?"
)
_DURATION_RULE = (
    "must be an ISO 8601 duration of weeks, days, hours, minutes and seconds, such as PT15M,"
    " PT1H30M or P2D (years and months have no fixed length)"
)


def _problem(field: str, rule: str, message: str) -> ValidationFailed:
    return ValidationFailed([FieldProblem(field=field, rule=rule, message=message)])


def parse_duration(value: str | None) -> timedelta:
    """`silentFor`: an ISO 8601 duration (PT15M), more than zero and at most ten years."""
    text = DEFAULT_SILENT_FOR if value is None else value
    match = _DURATION.fullmatch(text)
    if match is None or text in ("P", "PT") or not any(match.groupdict().values()):
        raise _problem("silentFor", "iso8601_duration", _DURATION_RULE)
    parts = {
        name: float(amount.replace(",", "."))
        for name, amount in match.groupdict().items()
        if amount is not None
    }
    try:
        duration = timedelta(**parts)
    except OverflowError:
        duration = MAX_SILENT_FOR * 2
    if not timedelta(0) < duration <= MAX_SILENT_FOR:
        raise _problem("silentFor", "range", "must be more than zero and at most 3660 days")
    return duration


def parse_kinds(kind: str | None) -> tuple[str, ...]:
    if kind is None:
        return KINDS
    if kind not in KINDS:
        raise _problem("kind", "one_of", "must be meter or vehicle (or left out for both)")
    return (kind,)


def encode_cursor(row: SilentDeviceRow) -> str:
    """The position after `row`, opaque to clients: base64url of its sort key."""
    last_seen = None if row.last_seen is None else row.last_seen.isoformat()
    raw = orjson.dumps([last_seen, row.kind, row.device_id])
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str | None) -> SilentDeviceRow | None:
    """The row a cursor points after; 422 naming `cursor` for anything this list never sent."""
    if cursor is None:
        return None
    try:
        if len(cursor) > 400:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        last_seen, kind, device_id = orjson.loads(raw)
        if kind not in KINDS or not isinstance(device_id, str):
            raise ValueError("not a position")
        seen = None if last_seen is None else datetime.fromisoformat(last_seen)
        if seen is not None and seen.tzinfo is None:
            raise ValueError("not a position")
    except (ValueError, TypeError, binascii.Error, orjson.JSONDecodeError):
        raise _problem(
            "cursor", "format", "must be a nextCursor this list answered, unchanged"
        ) from None
    return SilentDeviceRow(kind=kind, device_id=device_id, last_seen=seen)


async def silent_devices(
    connection: ReadConnection,
    silent_for: timedelta,
    kinds: tuple[str, ...],
    after: SilentDeviceRow | None,
    limit: int,
) -> dict[str, Any]:
    """A page of silent devices and the cursor of the next one (null on the last page)."""
    silent_since = datetime.now(UTC) - silent_for
    rows = await repository.list_silent_devices(connection, silent_since, kinds, after, limit + 1)
    page = rows[:limit]
    return {
        "devices": [
            {"kind": row.kind, "deviceId": row.device_id, "lastSeen": row.last_seen} for row in page
        ],
        "nextCursor": encode_cursor(page[-1]) if len(rows) > limit else None,
    }
