"""The simulator's devices over MQTT: readings published at QoS 1, the broker's PUBACKs counted.

Only the readings change path: assignments, readiness and the verdicts still use the HTTP API.
Each device publishes on its own topic (`meters/{id}/readings`, `vehicles/{id}/readings`), one
reading a message in real time and the device's readings of a batch as one array when
back-filling. A PUBACK is the broker's promise, not the engine's, so before the verdicts the
client waits until the engine has acknowledged everything it received (`settle`).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import threading
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from energy_ingest.simulator.client import Delivered, EngineClient, Kind, UnexpectedAnswer

_TOPIC_ROOT: dict[str, str] = {"meter": "meters", "vehicle": "vehicles"}
_ID_FIELD: dict[str, str] = {"meter": "meterId", "vehicle": "vehicleId"}
_SETTLE_POLL_SECONDS = 0.5
_numbers = itertools.count()


class MqttEngineClient(EngineClient):
    """EngineClient whose readings go to an MQTT broker instead of the ingest endpoints."""

    def __init__(self, http: httpx.AsyncClient, mqtt_url: str, **options: Any) -> None:
        super().__init__(http, **options)
        parts = urlsplit(mqtt_url)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise UnexpectedAnswer(f"not an MQTT URL: {mqtt_url} (mqtt://[user:pass@]host:port)")
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"energy-ingest-simulator-{os.getpid()}-{next(_numbers)}",
            protocol=paho.MQTTv5,
        )
        if parts.username is not None:
            self._client.username_pw_set(
                unquote(parts.username), unquote(parts.password or "") or None
            )
        if parts.scheme == "mqtts":
            self._client.tls_set()
        self._client.max_inflight_messages_set(1_000)
        self._client.max_queued_messages_set(0)
        self._client.on_publish = self._on_publish
        self._host = parts.hostname
        self._port = parts.port or (8883 if parts.scheme == "mqtts" else 1883)
        self._lock = threading.Lock()
        self._waiting: dict[int, asyncio.Future[bool]] = {}
        self._early: dict[int, bool] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.acknowledged = 0

    async def connect(self) -> None:
        self._loop = asyncio.get_running_loop()
        await asyncio.to_thread(self._client.connect, self._host, self._port, 60)
        self._client.loop_start()

    async def close(self) -> None:
        self._client.disconnect()
        await asyncio.to_thread(self._client.loop_stop)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, props: Any
    ) -> None:
        accepted = not reason.is_failure
        with self._lock:
            future = self._waiting.pop(mid, None)
            if future is None:
                self._early[mid] = accepted  # acknowledged before publish() returned
                return
        assert self._loop is not None
        self._loop.call_soon_threadsafe(_resolve, future, accepted)

    async def _publish(self, topic: str, payload: bytes) -> bool:
        """Publish at QoS 1; whether the broker acknowledged it."""
        assert self._loop is not None
        future: asyncio.Future[bool] = self._loop.create_future()
        info = self._client.publish(topic, payload, qos=1)
        with self._lock:
            early = self._early.pop(info.mid, None)
            if early is None:
                self._waiting[info.mid] = future
        accepted = early if early is not None else await future
        if accepted:
            self.acknowledged += 1
        return accepted

    async def send_batch(self, kind: Kind, body: bytes) -> Delivered:
        """A batch's readings, one array message per device on its own topic."""
        by_device: dict[str, list[Any]] = {}
        for item in orjson.loads(body):
            by_device.setdefault(str(item[_ID_FIELD[kind]]), []).append(item)
        results = await asyncio.gather(
            *(
                self._publish(f"{_TOPIC_ROOT[kind]}/{device}/readings", orjson.dumps(items))
                for device, items in by_device.items()
            )
        )
        delivered = Delivered()
        for accepted, items in zip(results, by_device.values(), strict=True):
            # Over MQTT a reading counts as delivered once the broker acknowledged it.
            delivered.stored += len(items) if accepted else 0
            delivered.rejected += 0 if accepted else len(items)
        return delivered

    async def send_one(self, kind: Kind, body: bytes) -> Delivered:
        """One reading on its device's topic, as a meter or a vehicle publishes it."""
        device = orjson.loads(body)[_ID_FIELD[kind]]
        accepted = await self._publish(f"{_TOPIC_ROOT[kind]}/{device}/readings", body)
        return Delivered(stored=1) if accepted else Delivered(rejected=1)

    async def settle(self, *, quiet_polls: int = 3) -> None:
        """Until the engine has committed and acknowledged every message it received: its
        MQTT acknowledgements stop moving with nothing left in its writer's queue."""
        previous = -1.0
        quiet = 0
        while quiet < quiet_polls:
            await asyncio.sleep(_SETTLE_POLL_SECONDS)
            metrics = (await self._request("GET", "/metrics")).text
            ready = (await self._request("GET", "/readyz")).json()
            found = re.search(
                r"^eie_mqtt_messages_acknowledged_total (\S+)$", metrics, re.MULTILINE
            )
            acknowledged = float(found.group(1)) if found else 0.0
            idle = not ready.get("checks", {}).get("queuedReadings")
            quiet = quiet + 1 if idle and acknowledged == previous else 0
            previous = acknowledged


def _resolve(future: asyncio.Future[bool], accepted: bool) -> None:
    if not future.done():
        future.set_result(accepted)
