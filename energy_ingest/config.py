"""Typed settings of the engine, read from `EIE_*` environment variables (and `DATABASE_URL`)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import AliasChoices, BeforeValidator, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _seconds_or_iso(value: Any) -> Any:
    """Durations come from the environment as `300` (seconds) or ISO 8601 (`PT5M`, `P30D`)."""
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds_or_iso)]


def is_loopback(host: str) -> bool:
    """Whether binding `host` keeps the engine reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # another host name: it may resolve to anything


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the MQTT broker is and how to sign in: EIE_MQTT_URL, taken apart."""

    host: str
    port: int
    tls: bool
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> BrokerAddress:
    """`mqtt://[user:pass@]host[:port]` (1883) or `mqtts://…` (8883, TLS); ValueError otherwise."""
    parts = urlsplit(url)
    if parts.scheme not in {"mqtt", "mqtts"}:
        raise ValueError("mqtt_url must start with mqtt:// or mqtts://")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"mqtt_url has an invalid port: {exc}") from exc
    if not parts.hostname:
        raise ValueError("mqtt_url names no host")
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ValueError("mqtt_url is scheme://[user:pass@]host:port, nothing after the port")
    tls = parts.scheme == "mqtts"
    return BrokerAddress(
        host=parts.hostname,
        port=port or (8883 if tls else 1883),
        tls=tls,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


@dataclass(frozen=True, slots=True)
class RegisterRules:
    """The settings of register accounting (EIE_MAX_METER_POWER_KW, EIE_MAX_VEHICLE_POWER_KW,
    EIE_GAP_SECONDS): how fast a register may grow (kW; a larger step is a rejected delta,
    never booked) and how far apart two readings are a gap."""

    meter_max_kw: float = 1000.0
    vehicle_max_kw: float = 1000.0
    gap_seconds: float = 150.0

    def max_kw(self, meter: bool) -> float:
        return self.meter_max_kw if meter else self.vehicle_max_kw


DEFAULT_REGISTER_RULES = RegisterRules()


@dataclass(frozen=True, slots=True)
class SplitRules:
    """What the vehicles' charging split and data quality are computed with (the engine's
    settings; readers compute what is not folded yet with the same)."""

    session_gap_minutes: int = 5
    registers: RegisterRules = DEFAULT_REGISTER_RULES

    def arguments(self) -> tuple[int, float, float, float]:
        """The statements' gap minutes, meter cap, vehicle cap and gap seconds."""
        rules = self.registers
        return (
            self.session_gap_minutes,
            rules.meter_max_kw,
            rules.vehicle_max_kw,
            rules.gap_seconds,
        )


DEFAULT_SPLIT_RULES = SplitRules()


class LoggingSettings(BaseSettings):
    """How the engine logs: read on its own by worker processes before anything else starts."""

    model_config = SettingsConfigDict(env_prefix="EIE_", extra="ignore", frozen=True)

    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="auto: human-readable text when standard error is a terminal, JSON lines "
        "(one object per line, for collectors) otherwise.",
    )


class Settings(LoggingSettings):
    """Every tunable of the engine. Built once by the CLI or the test suite and passed in."""

    model_config = SettingsConfigDict(env_prefix="EIE_", extra="ignore", frozen=True)

    # --- where the data lives -------------------------------------------------------------
    database_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("EIE_DATABASE_URL", "DATABASE_URL", "database_url"),
        description="PostgreSQL URL; when unset an embedded PostgreSQL is started in data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".energy-ingest"),
        description="Folder of the embedded PostgreSQL's data; survives restarts.",
    )

    # --- HTTP server ------------------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Bounds of the server itself, per process (uvicorn with httptools has none of its own). A
    # device's request head is a few hundred bytes (Host, Content-Type, Content-Length, a 70-byte
    # Authorization, a request id): 16 KiB, as Node and common proxies allow, leaves 30x room.
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line plus headers; beyond it 431 and the connection closes.",
    )
    max_headers: int = Field(
        default=100, ge=8, description="Most headers in one request; beyond it 431."
    )
    header_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request's line and headers must arrive within this time of the connection "
        "opening (or of their first byte on a kept-alive one): else 408 and close. When 18,000 "
        "devices connect at once, up to 11 s passed between a connection's accept and its first "
        "byte (one load generator on 2 cores); 30 s leaves room, as the body's 30 s does.",
    )
    max_connections: int = Field(
        default=25_000,
        ge=1,
        description="Open connections one server process holds; beyond it a new one gets 503 "
        "with Retry-After. 20,000 devices reporting at once, each on its own (fresh or kept-alive) "
        "connection, plus 25% room; lowered to the open-file limit minus 256 if that is smaller.",
    )

    access_log: bool = Field(default=True, description="Log one line per request (with its id).")

    # --- authentication -----------------------------------------------------------------------
    auth_enabled: bool = Field(
        default=True,
        description="Require an API key on every /v1 endpoint. Off only for local use: the "
        "engine refuses to run without keys on an address other than loopback.",
    )
    admin_key_file: Path | None = Field(
        default=None,
        description="Where the first start writes the admin key it creates (a new file, mode "
        "0600; start-up fails if anything is already there), besides printing it once.",
    )
    key_cache_entries: int = Field(
        default=100_000,
        ge=1,
        description="Keys (and unknown ids) each process keeps; the least recently used goes.",
    )
    # An id no process issued is refused without a query; a client address may still have a
    # few looked up, for a key created on another engine a moment before its notification.
    unknown_key_lookup_burst: int = Field(
        default=50,
        ge=0,
        description="Lookups of ids this process does not know, per client address, at once.",
    )
    unknown_key_lookups_per_second: float = Field(
        default=5.0,
        ge=0,
        description="… and per second after the burst: made-up ids cannot load the read pool.",
    )
    unknown_key_negative_seconds: float = Field(
        default=5.0,
        ge=0,
        description="While key notifications are down, how long an unknown id stays refused "
        "without a new lookup.",
    )

    # --- validation bounds (every bound is a setting) --------------------------------------
    max_kwh_per_reading: float = Field(default=100.0, gt=0)
    max_register_kwh: float = Field(
        default=1e9,
        gt=0,
        description="Highest cumulative register value (kWh) a reading may carry.",
    )
    min_voltage: float = 0.0
    max_voltage: float = 2000.0
    min_soc: float = 0.0
    max_soc: float = 100.0
    min_battery_temp: float = -60.0
    max_battery_temp: float = 100.0
    max_clock_skew: Duration = timedelta(minutes=5)
    max_backfill: Duration = timedelta(days=30)
    max_batch_items: int = Field(default=10_000, ge=1)
    # 10,000 vehicle readings with 64-character ids and 17-digit numbers, indented by four
    # spaces, are 2.7 MiB: 4 MiB holds a full batch of the largest readings with room to spare.
    max_body_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1024,
        description="Largest batch body (413 past it); sized for max_batch_items readings.",
    )
    # One such vehicle reading, indented, is 252 bytes: 4 KiB is sixteen times that, and
    # bounds the work a single-reading request (or an admin request) can ask for.
    max_single_body_bytes: int = Field(
        default=4 * 1024,
        ge=512,
        description="Largest body of one reading or one admin request (413 past it).",
    )
    body_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A request body must arrive within this time (408)."
    )

    # --- group-commit writer ------------------------------------------------------------------
    writer_batch_size: int = Field(default=5_000, ge=1, description="Flush at this many readings.")
    writer_flush_ms: float = Field(
        default=20.0, ge=0, description="Longest time a reading waits for its batch to fill."
    )
    writer_queue_limit: int = Field(
        default=100_000, ge=1, description="Readings waiting to be written; beyond it 503."
    )
    writer_concurrency: int = Field(
        default=2, ge=1, description="Batches committed in parallel, each on its own connection."
    )
    retry_after_seconds: int = Field(default=1, ge=1)
    max_new_devices_per_minute: int = Field(
        default=50_000,
        ge=1,
        description="New device ids (meters and vehicles together) one API key may register "
        "per minute in each process; beyond it 429. Sized so that a fleet of 20,000 chargers "
        "and their 20,000 vehicles, all new at the same minute, fits with 25 % to spare.",
    )

    # --- storage ------------------------------------------------------------------------------
    partition_days_ahead: int = Field(default=3, ge=1)
    retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Drop history partitions older than this many days, whole; unset keeps all.",
    )
    compact_closed_partitions: bool = Field(
        default=True,
        description="Rebuild each closed day's index packed (a third smaller); hourly check.",
    )
    rollup_fold_seconds: float = Field(
        default=5.0,
        gt=0,
        le=60,
        description=(
            "How often one engine folds the rollup inbox into the rollups (answers never wait"
            " for it: readers add the inbox). A fold costs about the same per device whatever"
            " it holds, so folding every 5 s rather than every second takes a fifth of that at"
            " full load: the HTTP batch bench with 2 workers runs at the rate it has without"
            " rollups."
        ),
    )
    read_pool_size: int = Field(default=8, ge=1)
    read_database_url: str | None = Field(
        default=None,
        description="A streaming replica of the database for the read endpoints and the "
        "dashboard; unset, they read the primary. Writes, key checks and probes always use "
        "the primary.",
    )
    read_max_staleness_seconds: float = Field(
        default=5.0,
        gt=0,
        description="An answer read on the replica misses at most this much of what the "
        "primary committed; a replica further behind (or unreachable) is passed over for the "
        "primary, and the answer's Read-Source header says so.",
    )
    read_replica_check_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="How often each engine notes the primary's WAL position and asks the "
        "replica how far it has replayed (the staleness it reports includes this interval).",
    )
    admin_pool_size: int = Field(
        default=2,
        ge=1,
        description="Connections for admin changes (keys, assignments), apart from the writer's"
        " pool so admin work never delays ingest; more admin requests wait for one.",
    )
    statement_timeout_seconds: float = Field(
        default=30.0, gt=0, description="A statement (or a batch's COPY) taking longer fails: 503."
    )

    # --- MQTT ingest ----------------------------------------------------------------------------
    mqtt_url: str | None = Field(
        default=None,
        description="Broker to take readings from (mqtt://[user:pass@]host:port, mqtts:// for "
        "TLS); unset, the engine speaks HTTP only.",
    )
    mqtt_group: str = Field(
        default="energy-ingest",
        min_length=1,
        pattern=r"^[^/+#]+$",
        description="Shared-subscription group: engines of one group split the devices.",
    )
    mqtt_client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=128,
        description="The engine's MQTT client id, the name of its persistent session; unset, "
        "energy-ingest-<host name>. Each engine process needs its own, kept across restarts, "
        "so that what it had not acknowledged comes back to it.",
    )
    # Mosquitto sends an MQTT 5 client at most this many unacknowledged messages at once: the
    # most readings one connection can bring to a batch. 20 (Mosquitto's own default) capped
    # batches at 20 readings; the bench measured the throughput against it.
    mqtt_receive_maximum: int = Field(
        default=10_000,
        ge=1,
        le=65_535,
        description="Messages the broker may have delivered and not yet had acknowledged.",
    )
    mqtt_session_expiry_seconds: int = Field(
        default=7 * 24 * 3600,
        ge=0,
        description="How long the broker keeps the engine's session (and queues its "
        "messages) while the engine is away.",
    )

    # --- OCPP (chargers) ------------------------------------------------------------------------
    ocpp_enabled: bool = Field(
        default=False,
        description="Serve the OCPP 1.6J central system at /ocpp/{chargePointId} (WebSocket, "
        "on the engine's port): chargers' MeterValues become meter readings.",
    )
    ocpp_heartbeat_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="The heartbeat interval a BootNotification's answer gives the charger.",
    )
    ocpp_strict: bool = Field(
        default=False,
        description="Answer a message that breaks the OCPP schema with a CALLERROR. Off "
        "(lenient), what can be understood is taken and each violation counted and logged "
        "once per charge point.",
    )
    ocpp_assumed_voltage: float | None = Field(
        default=230.0,
        gt=0,
        description="Voltage (V) booked with a register value that came without one (meterStart,"
        " meterStop, a sample without Voltage) when the connector has sent none yet on this "
        "connection; unset, such a value is refused and counted instead.",
    )

    # --- energy accounting (registers) ---------------------------------------------------------
    max_meter_power_kw: float = Field(
        default=1000.0,
        gt=0,
        description="A meter's register may grow at most this fast (kW): a larger step is a "
        "rejected delta, never booked. 1 MW is above any charger in service (megawatt truck "
        "charging included) and 200 000 times below the 53.7 MWh-in-a-minute glitch.",
    )
    max_vehicle_power_kw: float = Field(
        default=1000.0,
        gt=0,
        description="The same cap for a vehicle's DC register (kW).",
    )
    gap_seconds: float = Field(
        default=150.0,
        gt=0,
        description="Readings further apart than this are a gap in the data quality answer "
        "(devices report every minute: one missing reading is a gap).",
    )

    # --- analytics ----------------------------------------------------------------------------
    efficiency_threshold: float = Field(
        default=0.85,
        gt=0,
        le=1,
        description="Below this DC/AC a vehicle is underperforming (threshold_mode flat, and the "
        "fast class of power-class).",
    )
    # Flat by default: the seed's documented rule (DC/AC below 0.85 is underperforming) stays
    # true for every client, and a vehicle's status stays the fleet row's.
    threshold_mode: Literal["flat", "power-class"] = Field(
        default="flat",
        description="flat: efficiency_threshold for every charge. power-class: the threshold of "
        "the charge's average AC power (ADAC measured 12.7-24.2 % loss on a 2.3 kW household "
        "socket against 6.3-9.7 % on an 11 kW wallbox, 2022): socket up to 3.7 kW 0.70, "
        "wallbox up to 22 kW 0.85, fast above 22 kW efficiency_threshold.",
    )
    session_gap_minutes: int = Field(
        default=5,
        ge=0,
        # A session bridges at most gap + 1 minutes: under an hour, so whether a fleet window's
        # first session began before it is decided in its first hour (vehicle_energy_hours).
        le=30,
        description="Minutes without DC a charging session may hold and still be one session"
        " (0–30).",
    )
    max_analytics_span: Duration = timedelta(days=31)

    @property
    def register_rules(self) -> RegisterRules:
        return RegisterRules(self.max_meter_power_kw, self.max_vehicle_power_kw, self.gap_seconds)

    @property
    def split_rules(self) -> SplitRules:
        return SplitRules(self.session_gap_minutes, self.register_rules)

    @model_validator(mode="after")
    def _mqtt_url_is_a_broker(self) -> Settings:
        if self.mqtt_url is not None:
            parse_mqtt_url(self.mqtt_url)
            if self.workers > 1:
                raise ValueError(
                    "MQTT ingest runs in one process (one persistent session, one client id):"
                    " use workers=1 with mqtt_url, and more engine processes, each with its own"
                    " mqtt_client_id, to share the subscription"
                )
        return self

    @model_validator(mode="after")
    def _retention_keeps_the_backfill_window(self) -> Settings:
        if (
            self.retention_days is not None
            and timedelta(days=self.retention_days) <= self.max_backfill
        ):
            raise ValueError(
                "retention_days must exceed max_backfill: a back-filled reading would otherwise"
                " land in a day that retention drops"
            )
        return self

    @model_validator(mode="after")
    def _replica_checked_within_its_bound(self) -> Settings:
        if self.read_replica_check_seconds >= self.read_max_staleness_seconds:
            raise ValueError(
                "read_replica_check_seconds must be below read_max_staleness_seconds: the"
                " staleness an engine knows includes the time since its last check"
            )
        return self

    @model_validator(mode="after")
    def _no_open_engine_beyond_loopback(self) -> Settings:
        if not self.auth_enabled and not is_loopback(self.host):
            raise ValueError(
                f"authentication is off (EIE_AUTH_ENABLED=false) but the engine would listen on "
                f"{self.host}, which is not a loopback address: anyone who reaches it could write "
                "and read every device. Bind to 127.0.0.1, or leave authentication on and create "
                "keys with `energy-ingest keys create`."
            )
        return self

    @model_validator(mode="after")
    def _bounds_are_ordered(self) -> Settings:
        for low, high in (
            ("min_voltage", "max_voltage"),
            ("min_soc", "max_soc"),
            ("min_battery_temp", "max_battery_temp"),
        ):
            if getattr(self, low) >= getattr(self, high):
                raise ValueError(f"{low} must be lower than {high}")
        return self
