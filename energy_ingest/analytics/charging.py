"""Charging against standby, and the threshold a vehicle's charging is judged by.

A charging minute is a UTC minute in which the vehicle's readings book DC > 0; the feeding
meters' AC in those minutes is charging AC, the rest is standby AC (the charger idling, the
car's electronics while it takes nothing). Whole-window DC/AC punishes a healthy charger that
idles all day, so a vehicle's status judges its charging efficiency whenever the window holds
charging AC, and the whole window (as the seed did) otherwise.

The threshold is flat (`EIE_EFFICIENCY_THRESHOLD`) by default, or that of the charge's power
class (`EIE_THRESHOLD_MODE=power-class`): slow charging loses more, mostly to the car's
electronics running the whole time. ADAC measured (2022, four cars, the energy metered
before the car against the energy into the battery) 12.7–24.2 % loss on a 2.3 kW household
socket and 6.3–9.7 % on an 11 kW wallbox. Each class's threshold is the worst healthy car's
efficiency less five points (meter and battery-management accuracy, a cold battery), rounded
down to 0.05: socket 1 − 0.242 − 0.05 → 0.70, wallbox 1 − 0.097 − 0.05 → 0.85. Above 22 kW
(no household or wallbox circuit gives more: a DC charger, its own conversion on the meter's
side) we know of no published measurement to cite: the flat threshold applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from energy_ingest.analytics.rows import SessionRow
from energy_ingest.analytics.schemas import ThresholdRule

ThresholdMode = Literal["flat", "power-class"]


@dataclass(frozen=True, slots=True)
class PowerClass:
    """Charges of average AC power up to `up_to_kw` (inclusive; None: no bound) are judged
    against `threshold` (None: the flat threshold)."""

    name: ThresholdRule
    up_to_kw: Decimal | None
    threshold: Decimal | None


POWER_CLASSES = (
    # 230 V × 16 A, one phase: the most a household socket circuit gives (ADAC: 2.3 kW).
    PowerClass("socket", Decimal("3.7"), Decimal("0.70")),
    # 400 V × 32 A, three phases: the most an AC wallbox gives (ADAC: 11 kW).
    PowerClass("wallbox", Decimal("22"), Decimal("0.85")),
    PowerClass("fast", None, None),
)


@dataclass(frozen=True, slots=True)
class Session:
    """One charging session (its AC and DC are those of its charging minutes)."""

    start: datetime
    end: datetime
    meter_id: str | None
    kwh_consumed_ac: Decimal
    kwh_delivered_dc: Decimal
    minutes: int
    peak_kw: Decimal


@dataclass(frozen=True, slots=True)
class ChargingSplit:
    """A window's energy split into charging minutes and the rest, with its sessions."""

    sessions: list[Session]
    standby_kwh_consumed_ac: Decimal
    standby_minutes: int

    @property
    def kwh_consumed_ac(self) -> Decimal:
        return sum((session.kwh_consumed_ac for session in self.sessions), Decimal(0))

    @property
    def kwh_delivered_dc(self) -> Decimal:
        return sum((session.kwh_delivered_dc for session in self.sessions), Decimal(0))

    @property
    def minutes(self) -> int:
        return sum(session.minutes for session in self.sessions)

    @property
    def meaningful(self) -> bool:
        """Whether charging efficiency can be judged: charging minutes that drew AC."""
        return self.minutes > 0 and self.kwh_consumed_ac > 0


def split_of(rows: Sequence[SessionRow]) -> ChargingSplit:
    """The statement's rows (`summarize_vehicle_sessions`) as a split."""
    sessions = [
        Session(
            start=row.starts_at,
            end=row.ends_at,
            meter_id=row.meter_id,
            kwh_consumed_ac=row.kwh_consumed_ac or Decimal(0),
            kwh_delivered_dc=row.kwh_delivered_dc or Decimal(0),
            minutes=row.minutes or 0,
            peak_kw=row.peak_kw or Decimal(0),
        )
        for row in rows
        if row.starts_at is not None and row.ends_at is not None
    ]
    first = rows[0] if rows else None
    return ChargingSplit(
        sessions=sessions,
        standby_kwh_consumed_ac=first.standby_kwh_consumed_ac if first else Decimal(0),
        standby_minutes=first.standby_minutes if first else 0,
    )


def average_power_kw(kwh: Decimal, minutes: int) -> Decimal:
    """kW of `kwh` drawn over `minutes` (> 0), exactly: 0.15 kWh in a minute is 9 kW."""
    return kwh * 60 / minutes


def threshold_for(
    mode: ThresholdMode, flat: float, split: ChargingSplit
) -> tuple[float, ThresholdRule]:
    """The threshold the split's charging efficiency is judged by, and the rule that chose it.

    Flat mode, or a split that cannot be judged (the whole window is judged then): the flat
    threshold. Power-class mode: the class of the charging minutes' average AC power.
    """
    if mode == "flat" or not split.meaningful:
        return flat, "flat"
    power = average_power_kw(split.kwh_consumed_ac, split.minutes)
    for power_class in POWER_CLASSES:
        if power_class.up_to_kw is None or power <= power_class.up_to_kw:
            threshold = power_class.threshold
            return (flat if threshold is None else float(threshold)), power_class.name
    raise AssertionError("the last power class has no bound")  # pragma: no cover


def charging_answer(split: ChargingSplit) -> dict[str, Any]:
    """The performance answer's `charging` block."""
    ac, dc = split.kwh_consumed_ac, split.kwh_delivered_dc
    return {
        "energyConsumedAc": float(ac),
        "energyDeliveredDc": float(dc),
        "efficiency": float(dc / ac) if ac > 0 else None,
        "minutes": split.minutes,
        "sessions": len(split.sessions),
    }


def standby_answer(split: ChargingSplit) -> dict[str, Any]:
    """The performance answer's `standby` block: AC drawn in minutes the vehicle took no DC."""
    return standby_answer_of(split.standby_kwh_consumed_ac, split.standby_minutes)


def standby_answer_of(ac: Decimal, minutes: int) -> dict[str, Any]:
    """The `standby` block of `ac` kWh drawn over `minutes` standby minutes."""
    return {
        "energyConsumedAc": float(ac),
        "minutes": minutes,
        "averagePowerW": float(average_power_kw(ac, minutes) * 1000) if minutes else None,
    }


_MICROSECONDS_PER_HOUR = 3_600_000_000


def session_answer(session: Session) -> dict[str, Any]:
    """One session as the sessions endpoint answers it; powers are AC (the grid side)."""
    ac, dc = session.kwh_consumed_ac, session.kwh_delivered_dc
    duration = (session.end - session.start) // timedelta(microseconds=1)
    return {
        "start": session.start,
        "end": session.end,
        "meterId": session.meter_id,
        "energyConsumedAc": float(ac),
        "energyDeliveredDc": float(dc),
        "efficiency": float(dc / ac) if ac > 0 else None,
        "averagePowerKw": float(ac * _MICROSECONDS_PER_HOUR / duration),
        "peakPowerKw": float(session.peak_kw),
    }
