"""Prometheus metrics of one engine process (or, with several workers, of all of them)."""

from __future__ import annotations

import collections
import os
from collections.abc import Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from energy_ingest.readings import BY_TYPE, Outcome, Reading

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# `serve --workers N` sets this before the workers start; each then writes its samples to
# files there and a scrape of any worker sums all of them.
MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

_BATCH_BUCKETS = (1, 10, 50, 100, 500, 1_000, 2_000, 5_000, 10_000, 20_000)
_MAX_CACHED_CHILDREN = 1_000
_SECONDS_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class EngineMetrics:
    """The engine's instruments, on a registry of their own: one per app (tests make many)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        registry = self.registry
        self.readings = Counter(
            "eie_readings",
            "Readings written, by kind and outcome (stored, duplicate, conflict).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.rejected = Counter(
            "eie_readings_rejected",
            "Readings refused before the database: the rule broken, or overloaded/unavailable.",
            ["reason"],
            registry=registry,
        )
        self.batch_readings = Histogram(
            "eie_batch_readings", "Readings per committed batch.", buckets=_BATCH_BUCKETS,
            registry=registry,
        )  # fmt: skip
        self.batch_commit_seconds = Histogram(
            "eie_batch_commit_seconds", "Time to write and commit one batch.",
            buckets=_SECONDS_BUCKETS, registry=registry,
        )  # fmt: skip
        self.batches_failed = Counter(
            "eie_batches_failed", "Batches the database failed (their requests got 503).",
            registry=registry,
        )  # fmt: skip
        self.queue_readings = Gauge(
            "eie_writer_queue_readings", "Readings accepted and waiting for a batch.",
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.rollup_folds = Counter(
            "eie_rollup_folds", "Rounds of the rollup folder: folded, skipped (another engine "
            "folds), failed.", ["outcome"], registry=registry,
        )  # fmt: skip
        self.rollup_folded = Counter(
            "eie_rollup_folded_readings", "Readings moved from the rollup inbox to the rollups.",
            ["kind"], registry=registry,
        )  # fmt: skip
        self.rollup_split_days = Counter(
            "eie_rollup_split_vehicle_days",
            "Vehicle-days whose charging split and data quality the folder computed again.",
            registry=registry,
        )  # fmt: skip
        self.rollup_fold_seconds = Histogram(
            "eie_rollup_fold_seconds", "Time of one fold (its two transactions).",
            buckets=_SECONDS_BUCKETS, registry=registry,
        )  # fmt: skip
        self.pool_connections = Gauge(
            "eie_pool_connections", "Database connections by pool and state (in use, idle).",
            ["pool", "state"], registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        # Read replica (only with EIE_READ_DATABASE_URL).
        self.read_answers = Counter(
            "eie_read_answers", "Read answers by where they were read (replica, primary) and,"
            " on the primary, why (replica-behind, replica-unavailable).", ["source", "reason"],
            registry=registry,
        )  # fmt: skip
        self.replica_staleness = Gauge(
            "eie_read_replica_staleness_seconds", "How far behind the read replica may be, as"
            " this engine last measured it (+Inf while unknown).", registry=registry,
            multiprocess_mode="livemax",
        )  # fmt: skip
        self.http_seconds = Histogram(
            "eie_http_request_duration_seconds", "HTTP requests by method, route and status.",
            ["method", "route", "status"], buckets=_SECONDS_BUCKETS, registry=registry,
        )  # fmt: skip
        self._http_children: dict[tuple[str, str, int], Histogram] = {}

        # MQTT ingest (off unless a broker is configured).
        self.mqtt_received = Counter(
            "eie_mqtt_messages_received", "MQTT messages taken from the broker.",
            registry=registry,
        )  # fmt: skip
        self.mqtt_redelivered = Counter(
            "eie_mqtt_messages_redelivered",
            "MQTT messages the broker sent again (DUP flag): not acknowledged before a crash, "
            "a disconnect or a broker restart.",
            registry=registry,
        )  # fmt: skip
        self.mqtt_acknowledged = Counter(
            "eie_mqtt_messages_acknowledged",
            "MQTT messages acknowledged (PUBACK): their readings committed, or rejected.",
            registry=registry,
        )  # fmt: skip
        self.mqtt_rejected = Counter(
            "eie_mqtt_readings_rejected",
            "MQTT readings refused and answered on <topic>/rejected, by reason (the rule broken,"
            " topic_mismatch, conflict; a message that is no readings at all counts once).",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.mqtt_ack_seconds = Histogram(
            "eie_mqtt_ack_delay_seconds",
            "From an MQTT message's arrival to its PUBACK (its batch committed before).",
            buckets=_SECONDS_BUCKETS, registry=registry,
        )  # fmt: skip
        self.mqtt_connected = Gauge(
            "eie_mqtt_connected", "1 while the engine's MQTT connection is up.",
            registry=registry, multiprocess_mode="livemax",
        )  # fmt: skip

        # OCPP central system (off unless ocpp_enabled).
        self.ocpp_connections = Gauge(
            "eie_ocpp_connections", "Charge points connected over OCPP.",
            registry=registry, multiprocess_mode="livesum",
        )  # fmt: skip
        self.ocpp_messages = Counter(
            "eie_ocpp_messages", "OCPP calls from charge points, by action and answer"
            " (result, error).",
            ["action", "answer"], registry=registry,
        )  # fmt: skip
        self.ocpp_readings = Counter(
            "eie_ocpp_readings", "Meter readings taken from OCPP messages, by outcome (stored,"
            " duplicate, conflict, invalid: broke a reading rule, refused: no voltage or a"
            " connector the key may not write).",
            ["outcome"], registry=registry,
        )  # fmt: skip
        self.ocpp_violations = Counter(
            "eie_ocpp_violations", "Breaches of the OCPP schema or of its units by charge"
            " points, by rule (each logged once per charge point).",
            ["rule"], registry=registry,
        )  # fmt: skip
        self.ocpp_ignored_samples = Counter(
            "eie_ocpp_ignored_samples", "Sampled values counted but not stored, by measurand.",
            ["measurand"], registry=registry,
        )  # fmt: skip

    def count_fold(self, folded: Any, seconds: float, *, failed: bool = False) -> None:
        """One round of the rollup folder: folded (with its readings), skipped (another engine
        held the fold) or failed."""
        if failed:
            self.rollup_folds.labels("failed").inc()
            return
        if folded is None:
            self.rollup_folds.labels("skipped").inc()
            return
        self.rollup_folds.labels("folded").inc()
        self.rollup_fold_seconds.observe(seconds)
        self.rollup_folded.labels("meter").inc(folded.meters)
        self.rollup_folded.labels("vehicle").inc(folded.vehicles)
        self.rollup_split_days.inc(folded.vehicle_days)

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        """For the request middleware."""
        # `labels()` checks and joins the label values under a lock on every call: a few
        # percent of a single-reading request. Each combination's child is looked up once.
        key = (method, route, status)
        child = self._http_children.get(key)
        if child is None:
            if len(self._http_children) >= _MAX_CACHED_CHILDREN:
                self._http_children.clear()  # odd methods from clients: the cache stays small
            child = self.http_seconds.labels(method, route, str(status))
            self._http_children[key] = child
        child.observe(seconds)

    def count_outcomes(self, readings: Sequence[Reading], outcomes: Sequence[Outcome]) -> None:
        """One committed batch's outcomes, by kind."""
        # Counter over (type, outcome) pairs counts in C: this runs for every reading stored.
        pairs = zip(map(type, readings), outcomes, strict=True)
        for (model, outcome), count in collections.Counter(pairs).items():
            self.readings.labels(BY_TYPE[model].kind.value, outcome.value).inc(count)

    def set_pool(self, name: str, size: int, idle: int) -> None:
        self.pool_connections.labels(name, "in_use").set(size - idle)
        self.pool_connections.labels(name, "idle").set(idle)

    def render(self) -> bytes:
        """The exposition text; across all workers when several share the port."""
        if os.environ.get(MULTIPROCESS_ENV):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)
