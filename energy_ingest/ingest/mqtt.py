"""MQTT ingest: readings devices publish to a broker, acknowledged only once they are committed.

The engine subscribes to `$share/<group>/meters/+/readings` and `…/vehicles/+/readings` at QoS 1
with a persistent MQTT 5 session. A message's payload is an HTTP ingest body (one reading or an
array) and goes through the same validation and the same group-commit writer as HTTP, so MQTT
and HTTP readings share batches. Its PUBACK is sent only after its batch committed, and PUBACKs
leave in the order the messages arrived (MQTT 5, 4.6). A message that can never be stored (bad
JSON, a broken rule, a reading of another device than the topic's, a conflict) is acknowledged
too, or the broker would send it forever, and answered on `<topic>/rejected` with the body an
HTTP client would get.

Back-pressure: while the database is down or the writer is full, a message is retried and never
acknowledged; the broker sends at most `mqtt_receive_maximum` unacknowledged messages, so once
that many wait the engine reads no more and the broker keeps the rest queued.

Client library: paho-mqtt 2.x, the one whose acknowledgements the application sends itself
(`manual_ack=True`, then `ack(mid, qos)`): aiomqtt acknowledges on receipt, gmqtt when the
handler returns (a handler that waits for the commit would hold its connection's reading
loop). paho runs its network loop in a thread of its own, which also reconnects; messages
cross to the event loop in bulk, PUBACKs cross back through `ack`.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from energy_ingest.config import Settings, parse_mqtt_url
from energy_ingest.errors import (
    Conflict,
    EngineError,
    FieldProblem,
    MalformedRequest,
    PayloadTooLarge,
    ServiceUnavailable,
    TooManyNewDevices,
    ValidationFailed,
)
from energy_ingest.ingest.schemas import Limits, MeterReading, VehicleReading, validate_reading
from energy_ingest.ingest.service import ReadingModel, conflict_error, first_failures, invalid_error
from energy_ingest.readings import Outcome, Reading, kind_of
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.wire import format_timestamp
from energy_ingest.writer import ReadingWriter

logger = logging.getLogger(__name__)

TOPIC_FILTERS = ("meters/+/readings", "vehicles/+/readings")
REJECTED_SUFFIX = "/rejected"
QUOTA_KEY = "mqtt"
"""The new-device quota's bucket for everything that comes over MQTT (the broker
authenticates the devices; the engine sees no API key)."""

_TOPIC_KINDS: dict[str, tuple[ReadingModel, str]] = {
    "meters": (MeterReading, "meterId"),
    "vehicles": (VehicleReading, "vehicleId"),
}
_RETRY_FIRST_SECONDS = 0.05
_RETRY_LONGEST_SECONDS = 1.0
_KEEPALIVE_SECONDS = 30
_DRAIN_SECONDS = 10.0
_YIELD_EVERY_MESSAGES = 256
_STRUCTURE_BYTES_PER_ITEM = 16  # as ingest/service.py: '[', '{' and ',' a reading may hold


@dataclass(slots=True)
class Delivery:
    """One message as the broker delivered it, on the connection `generation` of the engine."""

    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes
    redelivered: bool
    arrived: float
    done: bool = False


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message's readings (some or all) are not stored: what `<topic>/rejected` gets."""

    body: dict[str, Any]
    reasons: list[str]


def client_id(settings: Settings) -> str:
    """The engine's MQTT client id: the setting, else one per host."""
    return settings.mqtt_client_id or f"energy-ingest-{socket.gethostname()}"


class MqttIngest:
    """Subscribes, hands messages to the writer, acknowledges them in order after the commit.

    An async context manager owned by the app's lifespan, entered after the writer (and so left
    before it): leaving stops taking messages, waits for those being written, sends their
    PUBACKs and disconnects; the broker keeps the session and what it did not get acknowledged.
    """

    def __init__(
        self,
        settings: Settings,
        writer: ReadingWriter,
        limits: Limits,
        metrics: EngineMetrics,
    ) -> None:
        assert settings.mqtt_url is not None
        self._settings = settings
        self._broker = parse_mqtt_url(settings.mqtt_url)
        self._writer = writer
        self._limits = limits
        self._metrics = metrics
        self._loop: asyncio.AbstractEventLoop | None = None
        # Shared with paho's thread: the connection generation, guarded with the PUBACKs, and
        # the inbox of messages not yet taken by the event loop.
        self._lock = threading.Lock()
        self._generation = 0
        self._connected = False
        self._inbox: list[Delivery] = []
        self._wake_scheduled = False
        # Event loop only.
        self._pending: deque[Delivery] = deque()
        self._tasks: set[asyncio.Task[None]] = set()
        self._closing = False
        self._client = self._make_client()

    # --- lifecycle -----------------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id(self._settings),
            protocol=paho.MQTTv5,
            manual_ack=True,
        )
        if self._broker.username is not None:
            client.username_pw_set(self._broker.username, self._broker.password)
        if self._broker.tls:
            client.tls_set_context(ssl.create_default_context())
        # Rejection answers are QoS 1: paho queues them (no bound) while the broker is away.
        client.max_queued_messages_set(0)
        client.reconnect_delay_set(min_delay=1, max_delay=10)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    async def __aenter__(self) -> MqttIngest:
        self._loop = asyncio.get_running_loop()
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self._settings.mqtt_session_expiry_seconds
        properties.ReceiveMaximum = self._settings.mqtt_receive_maximum
        # Not connected yet: paho's thread connects, and reconnects for as long as we run.
        self._client.connect_async(
            self._broker.host,
            self._broker.port,
            keepalive=_KEEPALIVE_SECONDS,
            clean_start=False,
            properties=properties,
        )
        self._client.loop_start()
        logger.info(
            "MQTT ingest from %s:%d as %s (shared group %s)",
            self._broker.host,
            self._broker.port,
            client_id(self._settings),
            self._settings.mqtt_group,
        )
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Take no more messages, acknowledge those committed, disconnect (session kept)."""
        self._closing = True
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=_DRAIN_SECONDS)
            for task in late:  # still waiting for the database: the broker will send them again
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._send_acknowledgements()
        await asyncio.to_thread(self._disconnect)

    def _disconnect(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._connected = False
        self._metrics.mqtt_connected.set(0)

    @property
    def connected(self) -> bool:
        """Whether the engine is connected and its subscriptions granted: /readyz reports it."""
        return self._connected

    # --- paho's thread -------------------------------------------------------------------------

    def _on_connect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        if reason.is_failure:
            logger.warning("the MQTT broker refused the connection: %s", reason)
            return
        with self._lock:
            self._generation += 1
        group = self._settings.mqtt_group
        # Again on every connection: a session the broker lost (or a first one) has none.
        client.subscribe(
            [(f"$share/{group}/{topic}", SubscribeOptions(qos=1)) for topic in TOPIC_FILTERS]
        )
        logger.info("MQTT connected (session present: %s)", flags.session_present)

    def _on_subscribe(
        self,
        client: paho.Client,
        userdata: Any,
        mid: int,
        reasons: list[ReasonCode],
        properties: Properties | None,
    ) -> None:
        refused = [str(reason) for reason in reasons if reason.is_failure]
        if refused:
            # An ACL that does not let the engine read: it takes nothing, so it is not ready.
            logger.error("the MQTT broker refused the subscriptions: %s", ", ".join(refused))
            return
        with self._lock:
            self._connected = True
        self._metrics.mqtt_connected.set(1)

    def _on_disconnect(
        self,
        client: paho.Client,
        userdata: Any,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        # From here no PUBACK of this connection may be sent: after a reconnect the broker
        # reuses packet ids, and a stale PUBACK would acknowledge another, uncommitted message.
        with self._lock:
            self._generation += 1
            self._connected = False
        self._metrics.mqtt_connected.set(0)
        if not self._closing:
            logger.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_message(self, client: paho.Client, userdata: Any, message: paho.MQTTMessage) -> None:
        delivery = Delivery(
            generation=self._generation,
            mid=message.mid,
            qos=message.qos,
            topic=message.topic,
            payload=bytes(message.payload),
            redelivered=bool(message.dup),
            arrived=time.monotonic(),
        )
        with self._lock:
            self._inbox.append(delivery)
            wake = not self._wake_scheduled
            self._wake_scheduled = True
        if wake and self._loop is not None:
            # One wake-up for every message that arrives before the event loop gets to it.
            self._loop.call_soon_threadsafe(self._take_inbox)

    # --- the event loop ------------------------------------------------------------------------

    def _take_inbox(self) -> None:
        with self._lock:
            deliveries, self._inbox = self._inbox, []
            self._wake_scheduled = False
        if self._closing:
            return  # never acknowledged: the broker sends them again on the next connection
        self._metrics.mqtt_received.inc(len(deliveries))
        for delivery in deliveries:
            if delivery.redelivered:
                self._metrics.mqtt_redelivered.inc()
            if delivery.qos > 0:
                self._pending.append(delivery)
        # The messages that arrived together go to the writer as one submission: one future
        # and one task for all of them rather than for each (a device's message is one reading).
        task = asyncio.create_task(self._handle(deliveries), name="mqtt-messages")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, deliveries: list[Delivery]) -> None:
        while True:
            try:
                rejections = await self._ingest(deliveries)
                break
            except (asyncio.CancelledError, _Stopping):
                return  # shutting down: not acknowledged, the broker sends them again
            except Exception:
                # A bug, not the messages' fault: never acknowledged without being stored, so
                # tried again (every later PUBACK waits for these, in arrival order).
                logger.exception("%d MQTT messages failed unexpectedly", len(deliveries))
                if self._closing:
                    return
                await asyncio.sleep(_RETRY_LONGEST_SECONDS)
        for delivery, rejection in zip(deliveries, rejections, strict=True):
            if rejection is not None:
                for reason in rejection.reasons:
                    self._metrics.mqtt_rejected.labels(reason).inc()
                self._client.publish(
                    delivery.topic + REJECTED_SUFFIX, orjson.dumps(rejection.body), qos=1
                )
            delivery.done = True
        self._send_acknowledgements()

    def _send_acknowledgements(self) -> None:
        """PUBACK every handled message at the head of the arrival order."""
        pending = self._pending
        now = time.monotonic()
        with self._lock:
            generation = self._generation
            while pending and (pending[0].done or pending[0].generation != generation):
                delivery = pending.popleft()
                if delivery.generation != generation:
                    continue  # its connection is gone: the broker sends it again
                self._client.ack(delivery.mid, delivery.qos)
                self._metrics.mqtt_acknowledged.inc()
                self._metrics.mqtt_ack_seconds.observe(now - delivery.arrived)

    async def _ingest(self, deliveries: list[Delivery]) -> list[Rejection | None]:
        """Store what the messages hold; per message, what was refused (for its rejected topic)."""
        parsed: list[ParsedMessage | Rejection] = []
        for number, delivery in enumerate(deliveries):
            if number and number % _YIELD_EVERY_MESSAGES == 0:
                await asyncio.sleep(0)  # validation is synchronous: let the rest of the engine run
            parsed.append(
                parse_message(delivery.topic, delivery.payload, self._limits, self._settings)
            )
        readings = [
            reading
            for message in parsed
            if isinstance(message, ParsedMessage)
            for reading in message.valid
        ]
        outcomes = await self._write(readings) if readings else []
        rejections: list[Rejection | None] = []
        position = 0
        for message in parsed:
            if isinstance(message, Rejection):
                rejections.append(message)
                continue
            taken = len(message.valid)
            rejections.append(message.rejection(outcomes[position : position + taken]))
            position += taken
        return rejections

    async def _write(self, readings: list[Reading]) -> list[Outcome]:
        """The readings' outcomes once committed; retried (never acknowledged meanwhile) while
        the database is down or the writer full. _Stopping if the engine stops first."""
        delay = _RETRY_FIRST_SECONDS
        while not self._closing:
            try:
                return await self._writer.write(readings, quota_key=QUOTA_KEY)
            except (ServiceUnavailable, TooManyNewDevices):
                pass
            except EngineError:
                logger.warning("an MQTT message's batch failed; it will be written again")
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_LONGEST_SECONDS)
        raise _Stopping


class _Stopping(Exception):
    """The engine stops before a message's readings could be written: no PUBACK for it."""


# --- a message's readings ----------------------------------------------------------------------


@dataclass(slots=True)
class ParsedMessage:
    """The valid readings of a message, and what was wrong with the rest."""

    batch: bool
    total: int
    valid: list[Reading]
    positions: list[int]
    invalid: list[tuple[int, list[FieldProblem]]]

    def rejection(self, outcomes: list[Outcome]) -> Rejection | None:
        """What to answer on the rejected topic once `outcomes` (of `valid`) are known."""
        conflicts = [
            (index, reading)
            for index, reading, outcome in zip(self.positions, self.valid, outcomes, strict=True)
            if outcome is Outcome.CONFLICT
        ]
        if not self.invalid and not conflicts:
            return None
        reasons = [problems[0].rule for _, problems in self.invalid]
        reasons += ["conflict"] * len(conflicts)
        if not self.batch:
            if self.invalid:
                return Rejection(ValidationFailed(self.invalid[0][1]).body(), reasons)
            reading = conflicts[0][1]
            return Rejection(
                Conflict(
                    f"{kind_of(reading).id_field} {reading.device_id} already has a different"
                    f" reading at {format_timestamp(reading.timestamp)}; the stored reading is kept"
                ).body(),
                reasons,
            )
        stored = sum(1 for outcome in outcomes if outcome is Outcome.STORED)
        duplicates = sum(1 for outcome in outcomes if outcome is Outcome.DUPLICATE)
        failed = len(self.invalid) + len(conflicts)
        errors = [
            invalid_error(index, problems) if reading is None else conflict_error(index, reading)
            for index, problems, reading in first_failures(self.invalid, conflicts)
        ]
        body = {
            "total": self.total,
            "successful": stored + duplicates,
            "failed": failed,
            "stored": stored,
            "duplicates": duplicates,
            "errors": errors,
            "errorsOmitted": failed - len(errors),
        }
        return Rejection(body, reasons)


def topic_device(topic: str) -> tuple[ReadingModel, str, str] | None:
    """(model, id field, device id) of `meters/{id}/readings` or `vehicles/{id}/readings`."""
    prefix, _, rest = topic.partition("/")
    device_id, _, suffix = rest.partition("/")
    kind = _TOPIC_KINDS.get(prefix)
    if kind is None or suffix != "readings" or not device_id:
        return None
    return kind[0], kind[1], device_id


def _whole(error: EngineError, reason: str) -> Rejection:
    return Rejection(error.body(), [reason])


def parse_message(
    topic: str, payload: bytes, limits: Limits, settings: Settings
) -> ParsedMessage | Rejection:
    """A message's readings, validated as an HTTP body to `/v1/ingest/<kind>[/batch]` is, and
    each bound to the device its topic names; or why none of it can be stored."""
    device = topic_device(topic)
    if device is None:  # the subscriptions only match these topics; a broker bug, not a device's
        return _whole(
            ValidationFailed(
                [FieldProblem("topic", "pattern", "must be meters/{id}/readings or vehicles/…")]
            ),
            "topic",
        )
    model, id_field, device_id = device
    if len(payload) > settings.max_body_bytes:
        return _whole(
            PayloadTooLarge(f"a message holds at most {settings.max_body_bytes} bytes"),
            "payload_too_large",
        )
    stripped = payload.lstrip(b" \t\r\n")
    batch = stripped[:1] == b"["
    if not batch and len(payload) > settings.max_single_body_bytes:
        return _whole(
            PayloadTooLarge(
                f"one reading's message holds at most {settings.max_single_body_bytes} bytes"
            ),
            "payload_too_large",
        )
    if not stripped:
        return _whole(
            MalformedRequest("the message is empty; send a JSON document"), "malformed_json"
        )
    structure = payload.count(b"[") + payload.count(b"{") + payload.count(b",")
    if batch and structure > _STRUCTURE_BYTES_PER_ITEM * (settings.max_batch_items + 1):
        # As over HTTP: refused before the parser spends seconds on a few MiB of `[]`.
        return _whole(
            PayloadTooLarge(
                f"the message holds more JSON values than {settings.max_batch_items} readings can"
            ),
            "payload_too_large",
        )
    try:
        document = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        return _whole(MalformedRequest(f"the message is not valid JSON: {exc}"), "malformed_json")
    items = document if batch else [document]
    if len(items) > settings.max_batch_items:
        return _whole(
            PayloadTooLarge(
                f"a message holds at most {settings.max_batch_items} readings;"
                f" this one has {len(items)}"
            ),
            "payload_too_large",
        )
    # A device may publish only its own readings (the broker's ACL gives it its own topic):
    # a reading naming another device is a forgery or a misconfiguration, and refuses the
    # whole message, as a device-bound API key's does over HTTP.
    mismatched = [
        FieldProblem(
            f"{index}.{id_field}" if batch else id_field,
            "topic_mismatch",
            f"must equal the device id of the topic ({device_id})",
        )
        for index, item in enumerate(items)
        if isinstance(item, dict) and id_field in item and item[id_field] != device_id
    ]
    if mismatched:
        return Rejection(ValidationFailed(mismatched).body(), ["topic_mismatch"] * len(mismatched))
    now = datetime.now(UTC)
    parsed = ParsedMessage(batch=batch, total=len(items), valid=[], positions=[], invalid=[])
    for index, item in enumerate(items):
        checked = validate_reading(item, limits, model, now)
        if isinstance(checked, list):
            parsed.invalid.append((index, checked))
        else:
            parsed.valid.append(checked)
            parsed.positions.append(index)
    return parsed
