"""The invariant of every fault test: nothing acknowledged is lost, and live = newest stored."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg
import httpx

from energy_ingest.wire import format_timestamp
from tests.faults.load import Key, Kind, Ledger

_HISTORY = {
    "meter": "SELECT meter_id, ts, kwh_consumed_ac, voltage FROM meter_reading_history",
    "vehicle": "SELECT vehicle_id, ts, soc, kwh_delivered_dc, battery_temp"
    " FROM vehicle_reading_history",
}
_LIVE = {
    "meter": "SELECT meter_id, ts, kwh_consumed_ac, voltage FROM meter_live",
    "vehicle": "SELECT vehicle_id, ts, soc, kwh_delivered_dc, battery_temp FROM vehicle_live",
}
_LIVE_FIELDS = {
    "meter": ("kwhConsumedAc", "voltage"),
    "vehicle": ("soc", "kwhDeliveredDc", "batteryTemp"),
}
_SHOWN = 5  # problems quoted in an assertion message


def _same(kind: Kind, stored: tuple[float, ...], sent: tuple[float, ...]) -> bool:
    if kind == "meter":
        return stored == sent
    # History keeps soc and battery temperature as `real`; the view gives them back as the
    # decimal that was sent, so only a last-digit difference is tolerated.
    return stored[1] == sent[1] and all(
        math.isclose(a, b, rel_tol=1e-6) for a, b in ((stored[0], sent[0]), (stored[2], sent[2]))
    )


@dataclass(slots=True)
class Audit:
    acknowledged: int = 0
    lost: list[str] = field(default_factory=list)
    altered: list[str] = field(default_factory=list)
    stored_unacknowledged: int = 0  # committed, but the answer never reached the client
    live_wrong: list[str] = field(default_factory=list)
    live_newer_than_acknowledged: int = 0  # the newest stored reading was never answered

    def assert_nothing_lost(self) -> None:
        assert not self.lost, f"{len(self.lost)} acknowledged readings lost: {self.lost[:_SHOWN]}"
        assert not self.altered, f"{len(self.altered)} altered: {self.altered[:_SHOWN]}"
        assert not self.live_wrong, f"{len(self.live_wrong)} live: {self.live_wrong[:_SHOWN]}"

    def assert_exact(self) -> None:
        """Nothing lost, and nothing stored that was not acknowledged (no answer went missing)."""
        self.assert_nothing_lost()
        assert self.stored_unacknowledged == 0, (
            f"{self.stored_unacknowledged} readings stored without a 2xx answer"
        )


async def audit(database_url: str, ledger: Ledger) -> Audit:
    """Compare the database with the ledger.

    History must hold every acknowledged reading with its values. The live row of a device must
    be its newest stored reading, never older than its newest acknowledged one (and that very
    reading when the two timestamps are equal). A reading committed just before a kill, whose
    answer was lost, may legitimately be newer than every acknowledged one.
    """
    result = Audit(acknowledged=len(ledger))
    connection = await asyncpg.connect(database_url)
    try:
        history: dict[Key, tuple[float, ...]] = {}
        live: dict[tuple[Kind, str], tuple[datetime, tuple[float, ...]]] = {}
        for kind in ("meter", "vehicle"):
            for row in await connection.fetch(_HISTORY[kind]):
                history[(kind, row[0], row[1])] = tuple(row[2:])
            for row in await connection.fetch(_LIVE[kind]):
                live[(kind, row[0])] = (row[1], tuple(row[2:]))
    finally:
        await connection.close()

    for key, sent in ledger.acknowledged.items():
        stored = history.get(key)
        if stored is None:
            result.lost.append(f"{key[0]} {key[1]} at {format_timestamp(key[2])}")
        elif not _same(key[0], stored, sent):
            result.altered.append(f"{key}: sent {sent}, stored {stored}")
    result.stored_unacknowledged = sum(1 for key in history if key not in ledger.acknowledged)

    newest_stored: dict[tuple[Kind, str], tuple[datetime, tuple[float, ...]]] = {}
    for (kind, device_id, at), values in history.items():
        known = newest_stored.get((kind, device_id))
        if known is None or known[0] < at:
            newest_stored[(kind, device_id)] = (at, values)

    for device, (acknowledged_at, sent) in ledger.newest().items():
        state = live.get(device)
        newest = newest_stored.get(device)
        if state is None or newest is None:
            result.live_wrong.append(f"{device}: no live row")
            continue
        at, values = state
        if at != newest[0] or not _same(device[0], newest[1], values):
            result.live_wrong.append(f"{device}: live {state} is not the newest stored {newest}")
        elif at < acknowledged_at or (at == acknowledged_at and values != sent):
            result.live_wrong.append(f"{device}: live {state}, acknowledged {acknowledged_at}")
        elif at > acknowledged_at:
            result.live_newer_than_acknowledged += 1
    return result


async def live_over_http(base_url: str, ledger: Ledger, headers: Mapping[str, str]) -> list[str]:
    """GET …/{id}/live of every device: each answer must show a reading that history holds.

    Problems found, empty when every device's live answer is its newest acknowledged reading
    (or a newer stored one, per `audit`).
    """
    problems: list[str] = []
    newest = ledger.newest()
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=headers) as client:
        for (kind, device_id), (acknowledged_at, sent) in sorted(newest.items()):
            answer = await client.get(f"/v1/analytics/{kind}/{device_id}/live")
            if answer.status_code != 200:
                problems.append(f"{kind} {device_id}: {answer.status_code} {answer.text[:200]}")
                continue
            body = answer.json()
            shown = datetime.fromisoformat(body["lastUpdatedAt"])
            values = tuple(body[name] for name in _LIVE_FIELDS[kind])
            if shown < acknowledged_at or (shown == acknowledged_at and values != sent):
                problems.append(f"{kind} {device_id}: live {body}, acknowledged {sent}")
    return problems
