"""`energy-ingest simulate`: plan the run from its options, drive it, report what happened."""

from __future__ import annotations

import asyncio
import logging
import re
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
from pydantic import TypeAdapter, ValidationError
from rich.console import Console

from energy_ingest.simulator.client import EngineClient, UnexpectedAnswer
from energy_ingest.simulator.console import (
    ProgressView,
    make_console,
    print_detection,
    print_quality,
    print_run,
    print_worst,
)
from energy_ingest.simulator.detection import Detection, evaluate
from energy_ingest.simulator.fleet import FleetSpec, build_fleet, vehicle_id
from energy_ingest.simulator.mess import MessRates
from energy_ingest.simulator.mqtt import MqttEngineClient
from energy_ingest.simulator.ocpp import OcppEngineClient
from energy_ingest.simulator.runner import (
    MAX_HISTORY,
    Tally,
    backfill,
    realtime,
    realtime_start,
)
from energy_ingest.simulator.simulation import GAP_SECONDS, FleetSimulation, minute_floor

DEFAULT_URL = "http://127.0.0.1:8000"
EXIT_INTERRUPTED = 130


class SimulationAborted(Exception):
    """The run cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Everything `simulate` can be told."""

    duration: timedelta
    realtime: bool = False
    url: str = DEFAULT_URL
    spec: FleetSpec = field(default_factory=FleetSpec)
    mess: MessRates = field(default_factory=MessRates)
    speedup: float = 1.0
    start: datetime | None = None
    batch_size: int = 5_000
    concurrency: int | None = None
    threshold: float = 0.85
    gap_seconds: float = GAP_SECONDS  # the engine's gap setting, to count the gaps expected
    timeout_seconds: float = 60.0
    worst: int = 10
    api_key: str | None = None
    mqtt_url: str | None = None  # readings published to this broker instead of POSTed
    ocpp: bool = False  # meters are OCPP charge points sending MeterValues over WebSocket

    def headers(self) -> dict[str, str]:
        """The Authorization header, when a key is given."""
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


@dataclass(frozen=True, slots=True)
class RunResult:
    """The simulation (with its truth), the engine's answers, and the detection verdicts."""

    simulation: FleetSimulation
    tally: Tally
    detection: Detection | None


def plan(options: RunOptions, now: datetime) -> FleetSimulation:
    """The simulation the options describe, its clock placed so the engine accepts every reading.

    Back-fill ends at the current minute (or runs from --start); real time starts in the past
    and catches up with `now` as the run ends (see `realtime_start`).
    """
    minutes = int(options.duration.total_seconds() // 60)
    if minutes < 1:
        raise SimulationAborted("a run lasts at least one minute")
    if options.duration > MAX_HISTORY:
        raise SimulationAborted(
            f"a run lasts at most {MAX_HISTORY.days} days: the engine refuses readings older "
            "than its back-fill window (30 days)"
        )
    if options.realtime:
        if options.start is not None:
            raise SimulationAborted("--start is for back-fill; real time places its clock itself")
        start = minute_floor(realtime_start(now, minutes, options.speedup))
    elif options.start is not None:
        start = minute_floor(options.start)
        if start < now - MAX_HISTORY:
            raise SimulationAborted(f"--start is older than {MAX_HISTORY.days} days")
        if start + timedelta(minutes=minutes) > minute_floor(now):
            raise SimulationAborted(
                "the run would end in the future: the engine refuses readings more than 5 "
                "minutes ahead; choose an earlier --start or a shorter --backfill"
            )
    else:
        start = minute_floor(now) - timedelta(minutes=minutes)
    return FleetSimulation(
        build_fleet(options.spec, minutes), options.mess, start, gap_seconds=options.gap_seconds
    )


async def _preflight(client: EngineClient, options: RunOptions) -> None:
    if not await client.is_ready():
        raise SimulationAborted(
            f"no ready engine answers at {options.url}; start one with `energy-ingest serve` "
            "(or point --url at it)"
        )
    first = vehicle_id(options.spec, 1)
    if await client.has_assignments(first):
        raise SimulationAborted(
            f"the engine already knows a simulated fleet '{options.spec.prefix}' "
            f"({first} has meter assignments); simulate another fleet beside it with "
            "--prefix, or start the engine on an empty database"
        )


async def run(
    options: RunOptions,
    console: Console,
    *,
    http: httpx.AsyncClient | None = None,
    stop: asyncio.Event | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> RunResult:
    """Plan, check the engine, send the readings with a progress bar, report and judge.

    `http` replaces the client built from the URL (tests hand in one bound to the app).
    """
    simulation = plan(options, now())
    async with AsyncExitStack() as stack:
        if http is None:
            concurrency = options.concurrency or 16
            http = await stack.enter_async_context(
                httpx.AsyncClient(
                    base_url=options.url,
                    timeout=options.timeout_seconds,
                    limits=httpx.Limits(max_connections=max(concurrency, 16)),
                    headers=options.headers(),
                )
            )
        client = EngineClient(http)
        if options.mqtt_url is not None:
            mqtt = MqttEngineClient(http, options.mqtt_url)
            await mqtt.connect()
            stack.push_async_callback(mqtt.close)
            client = mqtt
        elif options.ocpp:
            chargers = OcppEngineClient(http, str(http.base_url), options.api_key)
            stack.push_async_callback(chargers.close)
            client = chargers
        await _preflight(client, options)
        with ProgressView(console, simulation, realtime=options.realtime) as view:
            if options.realtime:
                tally = await realtime(
                    client,
                    simulation,
                    speedup=options.speedup,
                    concurrency=options.concurrency or 16,
                    on_progress=view.update,
                    stop=stop,
                )
            else:
                tally = await backfill(
                    client,
                    simulation,
                    batch_size=options.batch_size,
                    concurrency=options.concurrency or 4,
                    on_progress=view.update,
                    stop=stop,
                )
            view.finish(tally)
        if isinstance(client, MqttEngineClient):
            # The broker acknowledged every reading; the verdicts need the engine to have them.
            await client.settle()
        mode = f"real time ×{options.speedup:g}" if options.realtime else "back-fill"
        if options.mqtt_url is not None:
            mode += ", over MQTT (QoS 1, broker PUBACKs counted)"
        if isinstance(client, OcppEngineClient):
            mode += (
                f", meters over OCPP 1.6J ({client.connections} charge points, CALLRESULTs counted)"
            )
        print_run(console, simulation, tally, mode)
        if tally.interrupted:
            # The truth assumes every reading of the run was delivered: no verdict on a part.
            return RunResult(simulation, tally, None)
        detection = await evaluate(client, simulation, threshold=options.threshold)
        console.print()
        print_detection(console, detection)
        fleet = simulation.fleet
        if (
            detection.quality_reported
            or fleet.spec.energy_fields != "interval"
            or fleet.spec.standby
        ):
            console.print()
            print_quality(console, detection)
        if options.worst:
            console.print()
            print_worst(console, detection, options.worst)
        return RunResult(simulation, tally, detection)


def quiet_http_logs() -> None:
    """httpx logs every request at INFO: thousands a second here, drowning the progress bar."""
    logging.getLogger("httpx").setLevel(logging.WARNING)


def install_stop_signals(stop: asyncio.Event) -> Callable[[], None]:
    """SIGINT/SIGTERM set `stop` (an orderly stop); a second one cancels the main task."""
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main is not None:
            main.cancel()
        stop.set()

    for number in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(number, on_signal)

    def remove() -> None:
        for number in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(number)

    return remove


def simulate(options: RunOptions) -> int:
    """Run `simulate` to the end; the exit status (0 done, 1 failed, 130 interrupted)."""
    console = make_console()
    errors = make_console(stderr=True)
    quiet_http_logs()

    async def main() -> RunResult:
        stop = asyncio.Event()
        remove = install_stop_signals(stop)
        try:
            return await run(options, console, stop=stop)
        finally:
            remove()

    try:
        result = asyncio.run(main())
    except (SimulationAborted, UnexpectedAnswer) as problem:
        errors.print(f"[red]simulate: {problem}[/]")
        return 1
    except (asyncio.CancelledError, KeyboardInterrupt):
        errors.print("[yellow]simulate: stopped[/]")
        return EXIT_INTERRUPTED
    return EXIT_INTERRUPTED if result.tally.interrupted else 0


_COMPACT_DURATION = re.compile(
    r"^(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m)?(?:(?P<s>\d+(?:\.\d+)?)s)?$"
)


def parse_duration(text: str) -> timedelta:
    """`24h`, `90m`, `1d12h`, `30s` or ISO 8601 (`PT24H`) → timedelta."""
    compact = _COMPACT_DURATION.match(text.strip().lower())
    if compact and any(compact.groupdict().values()):
        parts = {key: float(value) for key, value in compact.groupdict().items() if value}
        return timedelta(
            days=parts.get("d", 0.0),
            hours=parts.get("h", 0.0),
            minutes=parts.get("m", 0.0),
            seconds=parts.get("s", 0.0),
        )
    try:
        return TypeAdapter(timedelta).validate_python(text.strip())
    except ValidationError:
        raise ValueError(
            f"{text!r} is not a duration; write it like 24h, 90m, 1d12h or PT24H"
        ) from None
