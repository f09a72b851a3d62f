"""MQTT QoS 1 ingest, end to end with acknowledgement after commit, beside HTTP in the same run.

    python -m bench.mqtt [--database-url postgresql://…]

Phases, each on a fresh database with its own engine process (one worker) and, for MQTT, its
own Mosquitto (`bench/broker.py`):

1. HTTP batches (the baseline of the storage path) and HTTP single readings, bench/http_load;
2. MQTT, one reading a message (how a meter or a vehicle publishes), with the broker limits the
   repository ships and the engine's receive maximum (10,000 unacknowledged a connection);
3. the same with a window of 20, Mosquitto's default for MQTT 3 clients: what those limits
   would cost, so the shipped ones are a measurement rather than a guess;
4. MQTT, 100 readings a message (a gateway publishing for its devices).

Devices are publisher processes (paho, QoS 1); the MQTT rate is the engine's PUBACKs (each
after its batch committed) over the middle 90 % of a phase, read from its /metrics, and the
acknowledgement delay (arrival to PUBACK) is interpolated from the engine's histogram.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.broker import Mosquitto, running_mosquitto
from bench.database import (
    admin_server,
    count_stored_rows,
    install_key,
    prepare_schema,
    scratch_database,
)
from bench.http_load import Call, drive, post_calls
from bench.readings import Reading, batch_bodies, generate_timeline, single_bodies
from bench.servers import HOST, engine_command, free_port, running_server


def parse_options(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.mqtt", description=__doc__)
    parser.add_argument("--database-url", help="a server to create scratch databases on")
    parser.add_argument("--devices", type=int, default=2_000, help="meters (and as many vehicles)")
    parser.add_argument("--minutes", type=int, default=40, help="minutes of readings per phase")
    parser.add_argument("--publishers", type=int, default=2, help="publisher processes")
    parser.add_argument("--array-size", type=int, default=100)
    parser.add_argument("--seed", type=int, default=12)
    return parser.parse_args(argv)


# --- publishers ------------------------------------------------------------------------------


def _publish(url: str, messages: list[tuple[str, bytes]], window: int) -> None:
    """One device connection: publish everything at QoS 1, wait for every PUBACK."""
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    from energy_ingest.config import parse_mqtt_url

    broker = parse_mqtt_url(url)
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=f"bench-device-{os.getpid()}", protocol=paho.MQTTv5
    )
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    done = threading.Event()
    # paho numbers messages with 16-bit ids: far more than 65,535 unacknowledged ones and two
    # share an id, one of them is never sent. A device never has that many anyway.
    room = threading.BoundedSemaphore(4 * window)
    acknowledged = 0

    def on_publish(*args: Any) -> None:
        nonlocal acknowledged
        acknowledged += 1
        room.release()
        if acknowledged == len(messages):
            done.set()

    client.on_publish = on_publish
    client.connect(broker.host, broker.port, keepalive=60)
    client.loop_start()
    for topic, payload in messages:
        room.acquire()
        client.publish(topic, payload, qos=1)
    done.wait(600)
    client.disconnect()
    client.loop_stop()


def mqtt_messages(readings: list[Reading], per_message: int) -> list[tuple[str, bytes]]:
    """Each device's readings on its own topic, one or `per_message` a message."""
    by_device: dict[tuple[str, str], list[Reading]] = {}
    for reading in readings:
        by_device.setdefault((reading.kind, reading.device_id), []).append(reading)
    messages: list[tuple[str, bytes]] = []
    if per_message == 1:
        for reading in readings:
            kind = "meters" if reading.kind == "meter" else "vehicles"
            topic = f"{kind}/{reading.device_id}/readings"
            messages.append((topic, orjson.dumps(reading.payload())))
        return messages
    for (kind, device_id), own in by_device.items():
        topic = f"{'meters' if kind == 'meter' else 'vehicles'}/{device_id}/readings"
        for start in range(0, len(own), per_message):
            chunk = own[start : start + per_message]
            messages.append((topic, orjson.dumps([r.payload() for r in chunk])))
    return messages


# --- the engine's figures ----------------------------------------------------------------------


def _metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def delay_percentile(text: str, share: float) -> float | None:
    """A percentile of eie_mqtt_ack_delay_seconds, interpolated within its bucket (seconds)."""
    buckets = [
        (float("inf") if bound == "+Inf" else float(bound), float(count))
        for bound, count in re.findall(
            r'^eie_mqtt_ack_delay_seconds_bucket\{le="([^"]+)"\} (\S+)$', text, re.MULTILINE
        )
    ]
    if not buckets or buckets[-1][1] == 0:
        return None
    target = share * buckets[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= target:
            if bound == float("inf"):
                return lower_bound
            inside = (target - lower_count) / max(count - lower_count, 1.0)
            return lower_bound + (bound - lower_bound) * inside
        lower_bound, lower_count = bound, count
    return None


async def run_mqtt_phase(
    name: str,
    admin_url: str,
    scratch: Path,
    log: Any,
    messages: list[tuple[str, bytes]],
    readings: int,
    *,
    publishers: int,
    receive_maximum: int,
    limits: bool,
    days: set[Any],
) -> dict[str, Any]:
    database = f"eie_bench_mqtt_{os.getpid()}_{re.sub(r'[^a-z0-9]', '_', name)}"
    async with scratch_database(admin_url, database) as url:
        await prepare_schema(url, days)
        await install_key(url)
        with running_mosquitto(scratch / f"broker-{database}", limits=limits) as broker:
            figures = await _drive_mqtt(
                name, url, broker, log, messages, readings, publishers, receive_maximum
            )
        stored = await count_stored_rows(url)
    figures["stored_rows"] = stored
    # Readings the devices got a PUBACK for (all of them, once the publishers finished) that
    # never reached the database: the broker dropped them (a queue limit), or the engine did.
    figures["not_stored"] = readings - stored["meter_readings"] - stored["vehicle_readings"]
    return figures


async def _drive_mqtt(
    name: str,
    url: str,
    broker: Mosquitto,
    log: Any,
    messages: list[tuple[str, bytes]],
    readings: int,
    publishers: int,
    receive_maximum: int,
) -> dict[str, Any]:
    port = free_port()
    environment = {
        **os.environ,
        "EIE_MQTT_URL": broker.url,
        "EIE_MQTT_CLIENT_ID": "bench-engine",
        "EIE_MQTT_RECEIVE_MAXIMUM": str(receive_maximum),
        "EIE_ACCESS_LOG": "false",
    }
    command = engine_command(url, port, 1)
    async with (
        running_server(name, command, port, log, 120, environment=environment),
        httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=30) as client,
    ):
        while (await client.get("/readyz")).json()["checks"].get("mqtt") is not True:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(
                target=_publish, args=(broker.url, messages[n::publishers], max(20, 2_000))
            )
            for n in range(publishers)
        ]
        for process in processes:
            process.start()
        total = len(messages)
        samples: list[tuple[float, float]] = []
        still_since = time.perf_counter()
        while True:
            text = (await client.get("/metrics")).text
            acknowledged = _metric(text, "eie_mqtt_messages_acknowledged_total")
            now = time.perf_counter()
            if samples and acknowledged > samples[-1][1]:
                still_since = now
            samples.append((now, acknowledged))
            if len(samples) % 40 == 0:
                received = _metric(text, "eie_mqtt_messages_received_total")
                print(
                    f"  {acknowledged:.0f} of {total} acknowledged ({received:.0f} received)",
                    file=sys.stderr,
                )
            if acknowledged >= total:
                break
            # Every publish acknowledged by the broker and nothing new for the engine: the
            # broker dropped the rest (Mosquitto's default queue limit does).
            if not any(p.is_alive() for p in processes) and now - still_since > 3:
                break
            await asyncio.sleep(0.05)
        for process in processes:
            await asyncio.to_thread(process.join, 60)
        text = (await client.get("/metrics")).text
    first = next(t for t, n in samples if n >= 0.05 * samples[-1][1])
    reached = samples[-1][1]
    last = next(t for t, n in samples if n >= 0.95 * reached)
    span = max(last - first, 1e-6)
    per_message = readings / total
    p50, p99 = delay_percentile(text, 0.5), delay_percentile(text, 0.99)
    return {
        "messages": total,
        "readings": readings,
        "acknowledged": int(_metric(text, "eie_mqtt_messages_acknowledged_total")),
        "readings_per_second": round(0.9 * reached * per_message / span),
        "ack_delay_p50_ms": None if p50 is None else round(p50 * 1000, 1),
        "ack_delay_p99_ms": None if p99 is None else round(p99 * 1000, 1),
        "receive_maximum": receive_maximum,
        "broker": "shipped limits" if receive_maximum > 20 else "Mosquitto defaults, window 20",
    }


async def run_http_phase(
    admin_url: str, log: Any, batch_calls: list[Call], single_calls: list[Call], days: set[Any]
) -> dict[str, Any]:
    database = f"eie_bench_mqtt_{os.getpid()}_http"
    async with scratch_database(admin_url, database) as url:
        await prepare_schema(url, days)
        await install_key(url)
        port = free_port()
        environment = {**os.environ, "EIE_ACCESS_LOG": "false"}
        command = engine_command(url, port, 1)
        async with running_server("engine (HTTP)", command, port, log, 120, environment) as server:
            batch = await drive(
                HOST, server.port, batch_calls, clients=4, request_timeout=60,
                inspect=lambda call, status, body: None if status < 300 else f"{status}",
            )  # fmt: skip
            single = await drive(
                HOST, server.port, single_calls, clients=64, request_timeout=60,
                inspect=lambda call, status, body: None if status < 300 else f"{status}",
                warmup=1.0, duration=6.0,
            )  # fmt: skip
    return {
        "batch_readings_per_second": round(batch.readings_per_second),
        "single_readings_per_second": round(single.readings_per_second),
        "single_p50_ms": round(single.percentile(0.5) * 1000, 1),
        "single_p99_ms": round(single.percentile(0.99) * 1000, 1),
    }


async def run(options: argparse.Namespace) -> dict[str, Any]:
    with ExitStack() as stack:
        scratch = Path(tempfile.mkdtemp(prefix="eie-bench-mqtt-"))
        stack.callback(shutil.rmtree, scratch, True)
        admin_url, where = admin_server(stack, scratch, options.database_url)
        log = stack.enter_context((scratch / "servers.log").open("wb"))
        minutes = options.minutes
        timeline = generate_timeline(options.devices, minutes * 4, options.seed, datetime.now(UTC))
        days = {reading.at.date() for minute in timeline.minutes for reading in minute[:1]}
        parts = [timeline.readings(n * minutes, (n + 1) * minutes) for n in range(4)]
        print("HTTP batches and single readings …", file=sys.stderr)
        http = await run_http_phase(
            admin_url,
            log,
            post_calls(batch_bodies(parts[0], 1_000)),
            post_calls(single_bodies(timeline.interleaved(minutes, 2 * minutes))),
            days,
        )
        results: dict[str, Any] = {"database": where, "http": http}
        phases = [
            ("mqtt single, shipped limits", parts[1], 1, 10_000, True),
            ("mqtt single, Mosquitto defaults", parts[2][: len(parts[2]) // 4], 1, 20, False),
            (f"mqtt arrays of {options.array_size}", parts[3], options.array_size, 10_000, True),
        ]
        for name, readings, per_message, receive_maximum, limits in phases:
            print(f"{name} …", file=sys.stderr)
            results[name] = await run_mqtt_phase(
                name, admin_url, scratch, log, mqtt_messages(readings, per_message),
                len(readings), publishers=options.publishers, receive_maximum=receive_maximum,
                limits=limits, days=days,
            )  # fmt: skip
        single = results["mqtt single, shipped limits"]["readings_per_second"]
        results["ratios"] = {
            "mqtt single / http single": round(
                single / max(http["single_readings_per_second"], 1), 2
            ),
            "mqtt single / http batch": round(
                single / max(http["batch_readings_per_second"], 1), 2
            ),
            "mqtt Mosquitto defaults / shipped limits": round(
                results["mqtt single, Mosquitto defaults"]["readings_per_second"] / max(single, 1),
                2,
            ),
        }
        return results


def main(argv: Sequence[str] | None = None) -> int:
    options = parse_options(argv)
    results = asyncio.run(run(options))
    print(orjson.dumps(results, option=orjson.OPT_INDENT_2).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
