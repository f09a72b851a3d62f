"""Devices that speak MQTT to a test's own broker: publish at QoS 1, count the PUBACKs.

A reading counts as acknowledged only once the broker sent its PUBACK; what the tests check is
that every such reading ends up stored, whatever is killed on the way.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from energy_ingest.config import parse_mqtt_url

_numbers = itertools.count()


class MqttDevice:
    """One MQTT connection publishing readings (of any device) and hearing the rejections.

    `on_acknowledged` runs in paho's thread with what `publish` was given as `tag`.
    """

    def __init__(
        self,
        url: str,
        *,
        on_acknowledged: Callable[[Any], None] | None = None,
        max_in_flight: int = 1000,
    ) -> None:
        broker = parse_mqtt_url(url)
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"test-device-{next(_numbers)}",
            protocol=paho.MQTTv5,
        )
        self.client.max_inflight_messages_set(max_in_flight)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self._host, self._port = broker.host, broker.port
        self._lock = threading.Lock()
        self._tags: dict[int, Any] = {}
        self._early: set[int] = set()
        self._on_acknowledged = on_acknowledged
        self._subscribed = threading.Event()
        self.acknowledged = 0
        self.rejections: list[tuple[str, dict[str, Any]]] = []

    def start(self) -> None:
        self.client.connect(self._host, self._port, keepalive=30)
        self.client.loop_start()
        assert self._subscribed.wait(10), "the test device could not subscribe"

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(
        self, client: paho.Client, userdata: Any, flags: Any, reason: ReasonCode, props: Any
    ) -> None:
        client.subscribe(
            [("meters/+/readings/rejected", 1), ("vehicles/+/readings/rejected", 1)],
        )

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed.set()

    def publish(self, topic: str, payload: bytes | dict[str, Any] | list[Any], tag: Any) -> None:
        """Publish at QoS 1; `tag` is handed to on_acknowledged when the PUBACK comes."""
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        # Not under our lock: paho's thread holds its own while it calls on_publish.
        info = self.client.publish(topic, data, qos=1)
        with self._lock:
            early = info.mid in self._early  # the PUBACK came before publish() returned
            if early:
                self._early.discard(info.mid)
            else:
                self._tags[info.mid] = tag
        if early:
            self._acknowledge(tag)

    def _on_publish(
        self, client: paho.Client, userdata: Any, mid: int, reason: ReasonCode, props: Properties
    ) -> None:
        if reason.is_failure:
            return
        with self._lock:
            if mid not in self._tags:
                self._early.add(mid)
                return
            tag = self._tags.pop(mid)
        self._acknowledge(tag)

    def _acknowledge(self, tag: Any) -> None:
        with self._lock:
            self.acknowledged += 1
        if self._on_acknowledged is not None:
            self._on_acknowledged(tag)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        self.rejections.append((message.topic, orjson.loads(message.payload)))

    @property
    def unacknowledged(self) -> int:
        with self._lock:
            return len(self._tags)

    async def wait_acknowledged(self, *, within: float = 30.0) -> None:
        """Until every publish got its PUBACK (a liveness bound, not a measured threshold)."""
        deadline = time.monotonic() + within
        while self.unacknowledged:
            assert time.monotonic() < deadline, (
                f"{self.unacknowledged} publishes never acknowledged"
            )
            await asyncio.sleep(0.02)

    async def wait_rejections(self, count: int, *, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while len(self.rejections) < count:
            assert time.monotonic() < deadline, f"rejections: {self.rejections}"
            await asyncio.sleep(0.02)


@contextmanager
def mqtt_device(url: str, **options: Any) -> Iterator[MqttDevice]:
    device = MqttDevice(url, **options)
    device.start()
    try:
        yield device
    finally:
        device.stop()
