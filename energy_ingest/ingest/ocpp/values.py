"""OCPP 1.6 meter values → the engine's meter readings, with what could not be understood.

Pure: no connection, no database. A `meterValue` element (one timestamp, several sampled values)
becomes at most one reading of the meter `{chargePointId}:{connectorId}`:

- `Energy.Active.Import.Register` (the measurand when none is named) → `kwhRegisterAc`,
- `Energy.Active.Import.Interval` → `kwhConsumedAc`,
- `Voltage` → `voltage`, the mean of the phases sent (phase-to-neutral or unphased values; a
  line-to-line value is a different quantity and is counted, not averaged in),

energies in Wh (OCPP's default unit) or kWh, voltage in V. Any other measurand is counted and
not stored. An energy sampled per phase, at the EV or at the inlet rather than the outlet, or
in another format than Raw, is counted too: the register the engine books is the outlet's
total.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

REGISTER = "Energy.Active.Import.Register"
INTERVAL = "Energy.Active.Import.Interval"
VOLTAGE = "Voltage"
MEASURANDS = frozenset(
    {
        "Current.Export",
        "Current.Import",
        "Current.Offered",
        "Energy.Active.Export.Register",
        "Energy.Active.Import.Register",
        "Energy.Reactive.Export.Register",
        "Energy.Reactive.Import.Register",
        "Energy.Active.Export.Interval",
        "Energy.Active.Import.Interval",
        "Energy.Reactive.Export.Interval",
        "Energy.Reactive.Import.Interval",
        "Frequency",
        "Power.Active.Export",
        "Power.Active.Import",
        "Power.Factor",
        "Power.Offered",
        "Power.Reactive.Export",
        "Power.Reactive.Import",
        "RPM",
        "SoC",
        "Temperature",
        "Voltage",
    }
)
"""OCPP 1.6's measurands: the metric of ignored samples is labelled by these (and "other")."""
_ENERGY_TO_KWH = {"Wh": 0.001, "kWh": 1.0}
_LINE_TO_LINE = frozenset({"L1-L2", "L2-L3", "L3-L1"})
_OUTLET = (None, "Outlet")


@dataclass(slots=True)
class Sampled:
    """What a `meterValue` element holds that the engine can use, and what it could not."""

    timestamp: Any
    register_kwh: float | None = None
    interval_kwh: float | None = None
    voltages: list[float] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    """Rules of OCPP the element broke (an unknown unit, a value that is no number, …)."""
    ignored: list[str] = field(default_factory=list)
    """Measurands of samples counted but not stored."""

    @property
    def voltage(self) -> float | None:
        """The mean of the phases' voltages sent, None without any."""
        return sum(self.voltages) / len(self.voltages) if self.voltages else None

    @property
    def has_energy(self) -> bool:
        return self.register_kwh is not None or self.interval_kwh is not None


def _number(value: Any, violations: list[str]) -> float | None:
    """A sampled value: OCPP sends a decimal as a string; a bare JSON number is understood too
    (and counted as a violation)."""
    if isinstance(value, bool):
        violations.append("value_not_a_number")
        return None
    if isinstance(value, int | float):
        violations.append("value_not_a_string")
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            violations.append("value_not_a_number")
            return None
    else:
        violations.append("value_not_a_number")
        return None
    if not math.isfinite(number):
        violations.append("value_not_a_number")
        return None
    return number


def sampled(element: Any) -> Sampled:
    """One `meterValue` element (keys in snake case, as the ocpp package hands them over)."""
    if not isinstance(element, dict):
        return Sampled(timestamp=None, violations=["meter_value_not_an_object"])
    found = Sampled(timestamp=element.get("timestamp"))
    samples = element.get("sampled_value")
    if not isinstance(samples, list):
        found.violations.append("sampled_value_not_a_list")
        return found
    for sample in samples:
        if not isinstance(sample, dict):
            found.violations.append("sampled_value_not_an_object")
            continue
        _take(sample, found)
    return found


def _take(sample: dict[str, Any], found: Sampled) -> None:
    measurand = sample.get("measurand") or REGISTER
    if measurand not in (REGISTER, INTERVAL, VOLTAGE):
        found.ignored.append(measurand if measurand in MEASURANDS else "other")
        return
    if sample.get("format") not in (None, "Raw"):
        found.ignored.append(measurand)  # SignedData: not a number the engine can read
        return
    phase = sample.get("phase")
    if measurand == VOLTAGE:
        if phase in _LINE_TO_LINE:
            found.ignored.append("Voltage (line to line)")
            return
        unit = sample.get("unit") or "V"
        if unit != "V":
            found.violations.append("voltage_unit")
            return
        volts = _number(sample.get("value"), found.violations)
        if volts is not None:
            found.voltages.append(volts)
        return
    if phase is not None or sample.get("location") not in _OUTLET:
        found.ignored.append(measurand)
        return
    unit = sample.get("unit") or "Wh"
    scale = _ENERGY_TO_KWH.get(unit)
    if scale is None:
        found.violations.append("energy_unit")
        return
    value = _number(sample.get("value"), found.violations)
    if value is None:
        return
    if measurand == REGISTER:
        found.register_kwh = value * scale
    else:
        found.interval_kwh = value * scale


def reading_body(meter_id: str, element: Sampled, voltage: float, timestamp: Any) -> dict[str, Any]:
    """The reading as an HTTP client would send it, for the same validation as HTTP."""
    body: dict[str, Any] = {"meterId": meter_id, "voltage": voltage, "timestamp": timestamp}
    if element.interval_kwh is not None:
        body["kwhConsumedAc"] = element.interval_kwh
    if element.register_kwh is not None:
        body["kwhRegisterAc"] = element.register_kwh
    return body


def meter_id(charge_point_id: str, connector_id: int) -> str:
    """The meter a connector's readings belong to."""
    return f"{charge_point_id}:{connector_id}"
