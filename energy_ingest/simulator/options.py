"""The simulator's command-line options: the fleet, the mess, the load, and their defaults for
`simulate` and `demo`, turned into the `RunOptions` a run is planned from.

The CLI puts them on its commands; like all of the simulator, this module speaks to the engine
only through the reading types and the wire rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import click

if TYPE_CHECKING:
    from energy_ingest.simulator.command import RunOptions

F = TypeVar("F", bound=Callable[..., Any])


class _TimestampType(click.ParamType[datetime]):
    name = "timestamp"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        from energy_ingest.wire import parse_timestamp

        if isinstance(value, datetime):
            return value
        try:
            return parse_timestamp(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


TIMESTAMP = _TimestampType()
"""An ISO 8601 timestamp with an offset, as the engine's wire accepts it."""

_SHARE = click.FloatRange(0.0, 1.0)


def fleet_options(defaults: dict[str, Any], envvar_prefix: str) -> Callable[[F], F]:
    """Options shared by simulate and demo: the fleet, the mess, the load."""

    def option(name: str, **kwargs: Any) -> Callable[[F], F]:
        key = name.split("/")[0].lstrip("-").replace("-", "_")
        kwargs.setdefault("default", defaults.get(key))
        kwargs.setdefault("envvar", f"{envvar_prefix}{key.upper()}")
        return click.option(name, show_default=True, show_envvar=True, **kwargs)

    decorators = [
        option("--vehicles", type=click.IntRange(1, 100_000), help="Vehicles (one meter each)."),
        option(
            "--faulty-share",
            type=_SHARE,
            help="Share of chargers made faulty (efficiency 70–82 %; healthy 88–95 %).",
        ),
        option(
            "--change-share",
            type=_SHARE,
            help="Share of vehicles moved to a spare charger (of the same health) mid-run.",
        ),
        option("--dc-fast-share", type=_SHARE, help="Share of DC fast chargers (50–150 kW)."),
        option("--jitter-rate", type=_SHARE, help="Share of readings whose clock is off."),
        option(
            "--max-jitter",
            type=click.IntRange(0, 20),
            help="Largest clock error, in whole seconds either way.",
        ),
        option("--retry-rate", type=_SHARE, help="Share of readings sent twice (a retry)."),
        option("--late-rate", type=_SHARE, help="Share of readings delivered 2–30 min late."),
        option(
            "--silence-rate",
            type=click.FloatRange(0.0, 1.0, max_open=True),
            help="Share of device-minutes lost to devices going silent (5–60 min at a time).",
        ),
        option(
            "--energy-fields",
            type=click.Choice(["interval", "register", "both", "mixed"]),
            help="What devices report: the energy since the last reading (kwhConsumedAc, "
            "kwhDeliveredDc), their cumulative register (kwhRegisterAc, kwhRegisterDc, from a "
            "base of 1,000–50,000 kWh), both, or mixed: each device draws (--register-share).",
        ),
        option(
            "--register-share",
            type=_SHARE,
            help="With --energy-fields mixed: share of devices with a register (half of them "
            "send the interval value too).",
        ),
        option(
            "--reset-rate",
            type=_SHARE,
            help="Share of register readings where the register restarts from 0 or a lower base "
            "and stays there (a rebooted or replaced device).",
        ),
        option(
            "--glitch-rate",
            type=_SHARE,
            help="Share of register readings that read 0 once, the next back at the true level.",
        ),
        option(
            "--spike-rate",
            type=_SHARE,
            help="Share of register readings 1 GWh too high once (over any physical cap).",
        ),
        option(
            "--standby/--no-standby",
            help="Idle chargers draw standby power: 6–15 W (AC wall box), 20–60 W (DC charger).",
        ),
        option(
            "--gap-seconds",
            type=click.FloatRange(60.0, min_open=True),
            envvar=[f"{envvar_prefix}GAP_SECONDS", "EIE_GAP_SECONDS"],
            help="The engine's gap setting, to count the gaps expected.",
        ),
        option("--seed", type=int, help="Same seed, same fleet and readings."),
        option(
            "--prefix",
            help="Device ids are PREFIX-v0001, PREFIX-m0001…: another prefix, another fleet.",
        ),
        option(
            "--batch-size",
            type=click.IntRange(1, 10_000),
            help="Back-fill: readings per batch request.",
        ),
        option(
            "--concurrency",
            type=click.IntRange(1, 512),
            help="Requests in flight (default 4 for back-fill, 16 in real time).",
        ),
        option(
            "--threshold",
            type=click.FloatRange(0.0, 1.0, min_open=True),
            envvar=[f"{envvar_prefix}THRESHOLD", "EIE_EFFICIENCY_THRESHOLD"],
            help="The engine's efficiency threshold, to compute the statuses expected.",
        ),
        option("--timeout", type=click.FloatRange(min=1.0), help="HTTP timeout in seconds."),
        option("--worst", type=click.IntRange(0, 1000), help="Rows of the worst-vehicles table."),
    ]

    def apply(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def run_options(
    options: dict[str, Any], *, duration: timedelta, realtime: bool, url: str
) -> RunOptions:
    from energy_ingest.simulator.command import RunOptions
    from energy_ingest.simulator.fleet import FleetSpec
    from energy_ingest.simulator.mess import MessRates
    from energy_ingest.wire import is_device_id

    prefix = options["prefix"]
    if len(prefix) > 40 or not is_device_id(prefix):
        raise click.BadParameter("1–40 characters of A-Z a-z 0-9 . _ : -", param_hint="--prefix")
    ocpp = options.get("protocol") == "ocpp"
    if ocpp and ":" in prefix:
        # A charge point's id has no ':' (it separates the connector in the meter's id).
        raise click.BadParameter("no ':' with --protocol ocpp", param_hint="--prefix")
    return RunOptions(
        duration=duration,
        realtime=realtime,
        url=url.rstrip("/"),
        spec=FleetSpec(
            vehicles=options["vehicles"],
            faulty_share=options["faulty_share"],
            change_share=options["change_share"],
            dc_fast_share=options["dc_fast_share"],
            prefix=prefix,
            seed=options["seed"],
            energy_fields=options["energy_fields"],
            register_share=options["register_share"],
            standby=options["standby"],
            connector_meters=ocpp,
        ),
        mess=MessRates(
            jitter=options["jitter_rate"],
            max_jitter_seconds=options["max_jitter"],
            retry=options["retry_rate"],
            late=options["late_rate"],
            silence=options["silence_rate"],
            reset=options["reset_rate"],
            glitch=options["glitch_rate"],
            spike=options["spike_rate"],
        ),
        speedup=options.get("speedup", 1.0),
        start=options.get("start"),
        batch_size=options["batch_size"],
        concurrency=options["concurrency"],
        threshold=options["threshold"],
        gap_seconds=options["gap_seconds"],
        timeout_seconds=options["timeout"],
        worst=options["worst"],
        api_key=options.get("api_key"),
        mqtt_url=options.get("mqtt_url"),
        ocpp=ocpp,
    )


FLEET_DEFAULTS: dict[str, Any] = {
    "vehicles": 100,
    "faulty_share": 0.02,
    "change_share": 0.05,
    "dc_fast_share": 0.2,
    "jitter_rate": 0.5,
    "max_jitter": 3,
    "retry_rate": 0.01,
    "late_rate": 0.01,
    "silence_rate": 0.0005,
    "energy_fields": "interval",
    "register_share": 0.5,
    "reset_rate": 0.0001,
    "glitch_rate": 0.001,
    "spike_rate": 0.0005,
    "standby": False,
    "gap_seconds": 150.0,
    "seed": 1,
    "prefix": "sim",
    "batch_size": 5_000,
    "concurrency": None,
    "threshold": 0.85,
    "timeout": 60.0,
    "worst": 10,
}


DEMO_DEFAULTS: dict[str, Any] = {
    **FLEET_DEFAULTS,
    "vehicles": 1_000,
    "faulty_share": 0.01,
    "change_share": 0.02,
    # Fewer silent devices than simulate's default: each one hides a vehicle from judgement,
    # and the demo's table should be about chargers, not gaps.
    "silence_rate": 0.0002,
    "seed": 7,
    "prefix": "demo",
    "worst": 15,
}
