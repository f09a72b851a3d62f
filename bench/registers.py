"""What register readings cost against interval readings: ingest rate and bytes per reading.

In process, no HTTP, as bench/rollups.py: the engine's own batch path (`prepare_batch` +
`write_batch`, one transaction a batch) with the engine's rollup folder beside it, into a fresh
database per round and variant (`bench.rollups.measure`; the rate until the last fold). The
same fleet reports the same minutes three ways: the interval energy only (what every other
figure of the suite measures), the cumulative register only (an OCPP charger, most smart
meters), and both. A register reading is booked against its chain in the write transaction (a
few index probes a device, and the corrections it makes to its neighbours go to the rollup
inbox), so its rate is the interval rate's times the ratio printed. Bytes per reading: every
history partition (heap, index, maps) over the readings it holds, as bench/suite.py measures
them.

    python -m bench.registers --admin-url postgresql://postgres@127.0.0.1:5432/postgres
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta

from bench.rollups import measure
from energy_ingest.readings import Reading, ValidMeterReading, ValidVehicleReading

VARIANTS = ("interval", "register", "both")


def minute_batches(
    variant: str, devices: int, minutes: int, first: datetime
) -> list[list[Reading]]:
    """One batch a minute; every meter and vehicle reports once, its energy sent as `variant`."""
    batches: list[list[Reading]] = []
    for minute in range(minutes):
        at = first + timedelta(minutes=minute)
        batch: list[Reading] = []
        for device in range(devices):
            ac = 0.1 + device % 7 / 1000
            ac_register = round(10_000 + device + ac * (minute + 1), 4)
            dc_register = round(5_000 + device + 0.09 * (minute + 1), 4)
            interval_ac = None if variant == "register" else ac
            interval_dc = None if variant == "register" else 0.09
            batch.append(
                ValidMeterReading(
                    f"m-{device}",
                    interval_ac,
                    230.0,
                    at,
                    None if variant == "interval" else ac_register,
                )
            )
            batch.append(
                ValidVehicleReading(
                    f"v-{device}",
                    50.0,
                    interval_dc,
                    25.0 + device % 9,
                    at,
                    None if variant == "interval" else dc_register,
                )
            )
        batches.append(batch)
    return batches


async def run(
    admin_url: str,
    devices: int,
    minutes: int,
    rounds: int,
    name_prefix: str = "bench_registers",
) -> dict[str, dict[str, float]]:
    """Best rate of `rounds` per variant (rounds alternate), with its bytes per reading."""
    first = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=minutes + 1)
    best: dict[str, dict[str, float]] = {}
    for number in range(rounds):
        for variant in VARIANTS:
            batches = minute_batches(variant, devices, minutes, first)
            measured = await measure(
                admin_url, f"{name_prefix}_{variant}_{number}", batches, True, storage=True
            )
            rate = measured.readings / measured.total_seconds
            storage = measured.bytes_per_reading
            print(f"round {number + 1}: {variant}: {rate:,.0f} readings/s", flush=True)
            if rate > best.get(variant, {}).get("readings_per_second", 0.0):
                best[variant] = {"readings_per_second": rate, **storage}
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", required=True, help="A server where databases may be made.")
    parser.add_argument("--devices", type=int, default=5_000, help="Meters, and as many vehicles.")
    parser.add_argument("--minutes", type=int, default=20, help="Batches: one a minute.")
    parser.add_argument("--rounds", type=int, default=2)
    options = parser.parse_args()
    best = asyncio.run(run(options.admin_url, options.devices, options.minutes, options.rounds))
    baseline = best["interval"]["readings_per_second"]
    print(
        "| energy sent as | readings/s (until the last fold) | × interval"
        " | B/reading meter | B/reading vehicle |"
    )
    print("|---|---|---|---|---|")
    for variant in VARIANTS:
        figures = best[variant]
        print(
            f"| {variant} | {figures['readings_per_second']:,.0f} |"
            f" {figures['readings_per_second'] / baseline:.2f}× |"
            f" {figures['meter_readings']:.1f} | {figures['vehicle_readings']:.1f} |"
        )


if __name__ == "__main__":
    main()
