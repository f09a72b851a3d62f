"""`energy-ingest simulate` and `energy-ingest demo`: a fleet driven through the HTTP API.

Their fleet options and defaults are the simulator's own (`energy_ingest.simulator.options`).
"""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import click

from energy_ingest.cli.common import DURATION
from energy_ingest.simulator.options import (
    DEMO_DEFAULTS,
    FLEET_DEFAULTS,
    TIMESTAMP,
    fleet_options,
    run_options,
)


@click.command()
@click.option(
    "--url",
    envvar="EIE_SIM_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    show_envvar=True,
    help="Base URL of the running engine; only its HTTP API is used.",
)
@click.option(
    "--api-key",
    envvar="EIE_API_KEY",
    show_envvar=True,
    help="An admin key of the engine (the simulator assigns meters as well as sending "
    "readings). Not needed when the engine runs with --no-auth.",
)
@click.option(
    "--backfill",
    "backfill_span",
    envvar="EIE_SIM_BACKFILL",
    type=DURATION,
    show_envvar=True,
    help="Back-fill this span (e.g. 24h, at most 29 days) ending now, as fast as the engine "
    "accepts, through the batch endpoints.",
)
@click.option(
    "--realtime",
    is_flag=True,
    envvar="EIE_SIM_REALTIME",
    show_envvar=True,
    help="Every device posts one reading a minute to the single-reading endpoints, for "
    "--duration of simulated time.",
)
@click.option(
    "--duration",
    envvar="EIE_SIM_DURATION",
    type=DURATION,
    default="1h",
    show_default=True,
    show_envvar=True,
    help="Real time: simulated span of the run.",
)
@click.option(
    "--speedup",
    envvar="EIE_SIM_SPEEDUP",
    type=click.FloatRange(min=1.0),
    default=1.0,
    show_default=True,
    show_envvar=True,
    help="Real time: simulated minutes per real minute. The engine refuses timestamps more "
    "than 5 min ahead, so the simulated clock starts DURATION × (1 − 1/SPEEDUP) in the past and "
    "catches up with the real clock exactly as the run ends: no reading is ever in the future.",
)
@click.option(
    "--start",
    envvar="EIE_SIM_START",
    type=TIMESTAMP,
    show_envvar=True,
    help="Back-fill: first simulated minute (ISO 8601 with an offset); default: the span "
    "before now. With --seed it makes a run repeatable to the byte.",
)
@click.option(
    "--protocol",
    envvar="EIE_SIM_PROTOCOL",
    type=click.Choice(["http", "mqtt", "ocpp"]),
    default="http",
    show_default=True,
    show_envvar=True,
    help="How devices send readings: POST to the engine, or publish at QoS 1 to the broker "
    "the engine subscribes to (--mqtt-url), or (ocpp) each meter is a charge point sending "
    "MeterValues to the engine's OCPP endpoint (serve --ocpp), vehicles still POST; "
    "assignments and verdicts use HTTP.",
)
@click.option(
    "--mqtt-url",
    envvar="EIE_SIM_MQTT_URL",
    show_envvar=True,
    help="The broker for --protocol mqtt: mqtt://[user:pass@]host:port (mqtts:// for TLS).",
)
@fleet_options(FLEET_DEFAULTS, "EIE_SIM_")
def simulate(
    url: str,
    api_key: str | None,
    backfill_span: timedelta | None,
    realtime: bool,
    duration: timedelta,
    protocol: str,
    mqtt_url: str | None,
    **options: Any,
) -> None:
    """Simulate a fleet against a running engine, over its HTTP API only.

    N vehicles, each fed by its own meter (assigned through the API; a few move to a spare
    charger mid-run), charge AC or DC with real physics; the devices misbehave as real ones do
    (clock jitter, retries, late and lost readings). At the end: what the engine stored, and
    whether its analytics flag exactly the chargers the simulator made faulty.

    \b
    energy-ingest simulate --backfill 24h --vehicles 1000
    energy-ingest simulate --realtime --duration 2h --speedup 60
    energy-ingest simulate --backfill 1h --protocol mqtt --mqtt-url mqtt://127.0.0.1:1883
    energy-ingest simulate --realtime --duration 1h --speedup 60 --protocol ocpp
    """
    from energy_ingest.simulator.command import simulate as run_simulation

    if (backfill_span is None) == (not realtime):
        raise click.UsageError("choose one mode: --backfill SPAN or --realtime")
    if realtime and options.get("start") is not None:
        raise click.UsageError("--start is for --backfill; real time places its clock itself")
    if (protocol == "mqtt") != (mqtt_url is not None):
        raise click.UsageError("--protocol mqtt needs --mqtt-url, and --mqtt-url needs it")
    run = run_options(
        {**options, "api_key": api_key, "mqtt_url": mqtt_url, "protocol": protocol},
        duration=duration if realtime else backfill_span or duration,
        realtime=realtime,
        url=url,
    )
    sys.exit(run_simulation(run))


@click.command()
@click.option(
    "--backfill",
    "backfill_span",
    envvar="EIE_DEMO_BACKFILL",
    type=DURATION,
    default="24h",
    show_default=True,
    show_envvar=True,
    help="Span of fleet history to simulate, ending now.",
)
@click.option(
    "--host", envvar="EIE_DEMO_HOST", default="127.0.0.1", show_default=True, show_envvar=True
)
@click.option(
    "--port",
    envvar="EIE_DEMO_PORT",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    show_envvar=True,
    help="Port of the engine; a free one is picked if it is taken.",
)
@click.option(
    "--data-dir",
    envvar="EIE_DEMO_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    show_envvar=True,
    help="Demo folder (embedded database, engine log), wiped at every start and removed at a "
    "clean stop. Default: energy-ingest-demo-<uid> in the system's temporary folder.",
)
@click.option(
    "--mqtt-url",
    envvar="EIE_DEMO_MQTT_URL",
    show_envvar=True,
    help="Run the fleet over MQTT: the engine subscribes to this broker and the devices publish "
    "to it at QoS 1 (mqtt://[user:pass@]host:port).",
)
@click.option(
    "--ocpp",
    is_flag=True,
    envvar="EIE_DEMO_OCPP",
    show_envvar=True,
    help="Run the meters as OCPP 1.6J charge points: the engine serves /ocpp and each meter "
    "sends its readings as MeterValues over its own WebSocket (vehicles still POST).",
)
@fleet_options(DEMO_DEFAULTS, "EIE_DEMO_")
def demo(
    backfill_span: timedelta,
    host: str,
    port: int,
    data_dir: Path | None,
    mqtt_url: str | None,
    ocpp: bool,
    **options: Any,
) -> None:
    """See the whole product in one go: engine, a day of a 1,000-vehicle fleet, the verdicts.

    Starts the engine on a fresh embedded PostgreSQL, back-fills 24 h of a fleet in which a
    few chargers are faulty, prints the vehicles with the lowest efficiency with the engine's
    status beside the truth, the detection result and URLs to try, then keeps the engine up
    until Ctrl-C (or SIGTERM), which stops it and its database cleanly.
    """
    from energy_ingest.simulator.demo import DemoOptions, default_folder
    from energy_ingest.simulator.demo import demo as run_demo

    if ocpp and mqtt_url is not None:
        raise click.UsageError("choose --mqtt-url or --ocpp")
    run = run_options(
        {**options, "mqtt_url": mqtt_url, "protocol": "ocpp" if ocpp else "http"},
        duration=backfill_span,
        realtime=False,
        url="",
    )
    sys.exit(
        run_demo(DemoOptions(folder=data_dir or default_folder(), host=host, port=port, run=run))
    )
