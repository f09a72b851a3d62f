"""OCPP 1.6J ingest, acknowledged after commit, beside HTTP in the same run; and what a held
charger connection costs the engine.

    python -m bench.ocpp [--database-url postgresql://…] [--chargers 200] [--seconds 20]
                         [--held 1000]

Phases, each on a fresh database with its own engine process (one worker, `--ocpp`, keys on):

1. HTTP single readings (one reading a request, 64 clients): the baseline, bench/http_load;
2. OCPP MeterValues: `--chargers` charge points, each on its own WebSocket, each sending one
   MeterValues (one register reading with its voltage) after the CALLRESULT of the previous,
   as OCPP 1.6 allows one call in flight per connection; the rate is the CALLRESULTs (each
   after its commit) over the middle of the phase, counted by client processes of their own;
3. held connections: `--held` charge points connect and boot, then stay idle; the engine's
   resident memory (VmRSS) before and after, divided by the connections.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AsyncExitStack, ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from bench.database import admin_server, install_key, prepare_schema, scratch_database
from bench.http_load import BENCH_KEY, drive, post_calls
from bench.readings import generate_timeline, single_bodies
from bench.servers import HOST, engine_command, free_port, running_server

_WARMUP_SHARE = 0.15  # the first and last 15 % of a phase are not counted


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.ocpp", description=__doc__)
    parser.add_argument("--database-url", help="a server to create scratch databases on")
    parser.add_argument("--chargers", type=int, default=200, help="concurrent charge points")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the OCPP phase")
    parser.add_argument("--held", type=int, default=1_000, help="idle connections to hold")
    parser.add_argument("--client-processes", type=int, default=2)
    return parser.parse_args(argv)


def _authorization(charge_point_id: str, token: str) -> str:
    credentials = f"{charge_point_id}:{token}".encode()
    return "Basic " + base64.b64encode(credentials).decode()


async def _charger(
    port: int, charge_point_id: str, token: str, until: float, start: datetime, stamps: list[float]
) -> None:
    """One charge point sending MeterValues back to back until `until`; the monotonic time of
    each CALLRESULT goes to `stamps`."""
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    async with connect(
        f"ws://{HOST}:{port}/ocpp/{charge_point_id}",
        subprotocols=[Subprotocol("ocpp1.6")],
        additional_headers={"Authorization": _authorization(charge_point_id, token)},
        open_timeout=60,
    ) as websocket:
        step = 0
        while time.monotonic() < until:
            step += 1
            moment = start + timedelta(seconds=step)
            payload = {
                "connectorId": 1,
                "meterValue": [
                    {
                        "timestamp": moment.isoformat().replace("+00:00", "Z"),
                        "sampledValue": [
                            {"value": str(1000 + 5 * step), "unit": "Wh"},
                            {"value": "230.5", "measurand": "Voltage", "unit": "V"},
                        ],
                    }
                ],
            }
            unique = uuid.uuid4().hex
            await websocket.send(orjson.dumps([2, unique, "MeterValues", payload]).decode())
            answer = orjson.loads(await websocket.recv())
            if answer[0] != 3:
                raise RuntimeError(f"{charge_point_id}: {answer}")
            stamps.append(time.monotonic())


def _client_process(
    port: int, token: str, names: list[str], seconds: float, start: str
) -> list[float]:
    """A process of charge points (the client's CPU must not be the engine's bound); the bench
    key's token is handed over, a spawned process would make a key of its own."""

    async def run() -> list[float]:
        stamps: list[float] = []
        until = time.monotonic() + seconds
        moment = datetime.fromisoformat(start)
        await asyncio.gather(
            *(_charger(port, name, token, until, moment, stamps) for name in names)
        )
        return stamps

    return asyncio.run(run())


def _rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


async def _hold(port: int, pid: int, count: int) -> dict[str, Any]:
    from websockets.asyncio.client import connect
    from websockets.typing import Subprotocol

    boot = {"chargePointVendor": "bench", "chargePointModel": "held"}
    await asyncio.sleep(1.0)
    before = _rss_bytes(pid)
    async with AsyncExitStack() as stack:
        opened = 0
        for number in range(count):
            name = f"HELD-{number}"
            websocket = await stack.enter_async_context(
                connect(
                    f"ws://{HOST}:{port}/ocpp/{name}",
                    subprotocols=[Subprotocol("ocpp1.6")],
                    additional_headers={"Authorization": _authorization(name, BENCH_KEY.token)},
                    open_timeout=60,
                    ping_interval=None,
                )
            )
            await websocket.send(orjson.dumps([2, "1", "BootNotification", boot]).decode())
            await websocket.recv()
            opened += 1
        await asyncio.sleep(2.0)
        after = _rss_bytes(pid)
    return {
        "connections": opened,
        "engine_rss_before_mib": round(before / 2**20, 1),
        "engine_rss_after_mib": round(after / 2**20, 1),
        "kib_per_connection": round((after - before) / opened / 1024, 1),
    }


async def run(options: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="eie-bench-ocpp-"))
        stack.callback(shutil.rmtree, scratch, True)
        admin_url, where = admin_server(stack, scratch, options.database_url)
        log = stack.enter_context((scratch / "servers.log").open("wb"))
        now = datetime.now(UTC)
        start = now.replace(microsecond=0) - timedelta(hours=12)
        timeline = generate_timeline(2_000, 20, 12, now)
        days = {start.date(), now.date(), (now - timedelta(days=1)).date()}
        days |= {reading.at.date() for minute in timeline.minutes for reading in minute[:1]}
        environment = {**os.environ, "EIE_ACCESS_LOG": "false", "EIE_OCPP_ENABLED": "true"}
        results: dict[str, Any] = {"database": where}

        print("HTTP single readings …", file=sys.stderr)
        async with scratch_database(admin_url, f"eie_bench_ocpp_{os.getpid()}_http") as url:
            await prepare_schema(url, days)
            await install_key(url)
            port = free_port()
            command = engine_command(url, port, 1)
            async with running_server("engine (HTTP)", command, port, log, 120, environment):
                single = await drive(
                    HOST, port, post_calls(single_bodies(timeline.interleaved(0, 20))),
                    clients=64, request_timeout=60,
                    inspect=lambda call, status, body: None if status < 300 else f"{status}",
                    warmup=1.0, duration=min(options.seconds, 10.0),
                )  # fmt: skip
        results["http single readings per second"] = round(single.readings_per_second)

        print(f"OCPP MeterValues, {options.chargers} chargers …", file=sys.stderr)
        async with scratch_database(admin_url, f"eie_bench_ocpp_{os.getpid()}_values") as url:
            await prepare_schema(url, days)
            await install_key(url)
            port = free_port()
            command = engine_command(url, port, 1)
            async with running_server("engine (OCPP)", command, port, log, 120, environment):
                processes = max(1, options.client_processes)
                names = [f"BENCH-{number}" for number in range(options.chargers)]
                context = multiprocessing.get_context("spawn")
                work = [
                    (port, BENCH_KEY.token, names[n::processes], options.seconds, start.isoformat())
                    for n in range(processes)
                ]
                with context.Pool(processes) as pool:
                    done = await asyncio.to_thread(pool.starmap, _client_process, work)
                stamps = sorted(stamp for stamps_of in done for stamp in stamps_of)
        first, last = stamps[0], stamps[-1]
        low = first + _WARMUP_SHARE * (last - first)
        high = last - _WARMUP_SHARE * (last - first)
        counted = sum(1 for stamp in stamps if low <= stamp <= high)
        results["ocpp meter values per second"] = round(counted / max(high - low, 1e-6))
        results["ocpp meter values acknowledged"] = len(stamps)
        results["ocpp chargers"] = options.chargers

        print(f"holding {options.held} idle charger connections …", file=sys.stderr)
        async with scratch_database(admin_url, f"eie_bench_ocpp_{os.getpid()}_held") as url:
            await prepare_schema(url, days)
            await install_key(url)
            port = free_port()
            command = engine_command(url, port, 1)
            async with running_server(
                "engine (held)", command, port, log, 120, environment
            ) as server:
                results["held"] = await _hold(port, server.pid, options.held)
        results["ratio ocpp / http single"] = round(
            results["ocpp meter values per second"]
            / max(results["http single readings per second"], 1),
            2,
        )
        return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    results = asyncio.run(run(options))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
