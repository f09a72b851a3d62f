"""One charge point's OCPP 1.6J session: the central system's handlers of its calls.

Built on the `ocpp` package's ChargePoint, which reads one call at a time from the connection
and sends a handler's answer only once the handler returned: a handler that awaits the commit
of its readings makes the CALLRESULT a durability acknowledgement. While the database is down
or the writer full, the handler raises and the package answers a CALLERROR (InternalError), so
the charger keeps the transaction message and sends it again (OCPP 1.6, 4.7).

Schema checks are ours, not the package's: every handler skips the package's validation and
`_handle_call` checks the call against the same schema, counting each violation (and logging
it once per charge point). Lenient (the default), the call is then handled for what can be
understood; strict, it is answered with the CALLERROR the package would send.
"""

from __future__ import annotations

import logging
import re
import sys
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

from ocpp.exceptions import (
    FormatViolationError,
    InternalError,
    OCPPError,
    ProtocolError,
    TypeConstraintViolationError,
)
from ocpp.messages import Call, get_validator
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call_result
from ocpp.v16.datatypes import IdTagInfo
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus

from energy_ingest.auth.guard import Principal
from energy_ingest.config import Settings
from energy_ingest.db.pool import Database
from energy_ingest.errors import EngineError, ServiceUnavailable, TooManyNewDevices
from energy_ingest.ingest.ocpp import repository
from energy_ingest.ingest.ocpp.values import (
    MEASURANDS,
    Sampled,
    meter_id,
    reading_body,
    sampled,
)
from energy_ingest.ingest.schemas import Limits, MeterReading, validate_reading
from energy_ingest.readings import Outcome, Reading
from energy_ingest.telemetry.metrics import EngineMetrics
from energy_ingest.wire import format_timestamp
from energy_ingest.writer import ReadingWriter

logger = logging.getLogger(__name__)

_STATUS_LENGTH = 64  # a status or error code longer than any of OCPP's is cut to this
_ID_TAG_LENGTH = 64
_INDEX = re.compile(r"\.\d+(?=\.|$)")


class Connection(Protocol):
    """What the ocpp package needs of a connection."""

    async def recv(self) -> str: ...

    async def send(self, message: str) -> None: ...


_Handler = TypeVar("_Handler", bound=Callable[..., Awaitable[Any]])


def _on(action: Action) -> Callable[[_Handler], _Handler]:
    """The package's `on`, typed; its schema check skipped (ours runs in `_handle_call`)."""
    decorate: Callable[[_Handler], _Handler] = on(action, skip_schema_validation=True)
    return decorate


class _PackageLog(logging.LoggerAdapter[logging.Logger]):
    """The ocpp package's log: every message it routes at debug (info would log each of a
    fleet's MeterValues), an answered error as one warning line with no traceback."""

    def info(self, msg: object, *args: object, **kwargs: Any) -> None:
        self.debug(msg, *args, **kwargs)

    def exception(self, msg: object, *args: object, **kwargs: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OCPPError):
            text = str(msg) % args if args else str(msg)
            self.warning("%s: %s %s", text, error.code, error.description)
        else:
            self.error(msg, *args, exc_info=True)


_PACKAGE_LOG = _PackageLog(logging.getLogger(__name__ + ".messages"))


class _Logged:
    """The (charge point, rule) pairs already logged, the least recently seen forgotten past a
    bound, so a fleet's misbehaving chargers cannot grow it without end."""

    def __init__(self, bound: int) -> None:
        self._bound = bound
        self._seen: OrderedDict[tuple[str, str], None] = OrderedDict()

    def first_time(self, charge_point_id: str, rule: str) -> bool:
        key = (charge_point_id, rule)
        if key in self._seen:
            self._seen.move_to_end(key)
            return False
        self._seen[key] = None
        if len(self._seen) > self._bound:
            self._seen.popitem(last=False)
        return True


_LOGGED = _Logged(100_000)


@dataclass(slots=True)
class Connectors:
    """What this connection has learnt about its connectors."""

    voltages: dict[int, float] = field(default_factory=dict)


class CentralSystem(ChargePoint16):  # type: ignore[misc]  # the package has no types
    """The engine's side of one charge point's connection."""

    def __init__(
        self,
        charge_point_id: str,
        connection: Connection,
        *,
        principal: Principal,
        settings: Settings,
        writer: ReadingWriter,
        database: Database,
        limits: Limits,
        metrics: EngineMetrics,
    ) -> None:
        super().__init__(charge_point_id, connection, logger=_PACKAGE_LOG)
        self._principal = principal
        self._settings = settings
        self._writer = writer
        self._database = database
        self._limits = limits
        self._metrics = metrics
        self._connectors = Connectors()

    # --- what every call goes through ----------------------------------------------------------

    async def _handle_call(self, msg: Call) -> Any:
        answer = "error"
        try:
            self._check_schema(msg)
            result = await super()._handle_call(msg)
            # The package answers a handler's exception with a CALLERROR itself and returns None.
            answer = "error" if result is None else "result"
            return result
        finally:
            # Labelled by the actions handled only: a charger's made-up names must not each
            # become a series of their own.
            action = msg.action if msg.action in _HANDLED else "other"
            self._metrics.ocpp_messages.labels(action, answer).inc()

    def _check_schema(self, msg: Call) -> None:
        if msg.action not in _HANDLED:
            return  # the package answers NotImplemented / NotSupported
        validator = get_validator(msg.message_type_id, msg.action, self._ocpp_version)
        errors = list(validator.iter_errors(msg.payload))
        if not errors:
            return
        for error in errors:
            path = _INDEX.sub("", ".".join(str(part) for part in error.absolute_path))
            self.violation(f"{msg.action}{'.' + path if path else ''}:{error.validator}")
        if self._settings.ocpp_strict:
            first = errors[0]
            details = {"cause": first.message}
            if first.validator in ("type", "maxLength"):
                raise TypeConstraintViolationError(details=details)
            if first.validator == "required":
                raise ProtocolError(details=details)
            raise FormatViolationError(details=details)

    def violation(self, rule: str, detail: str = "") -> None:
        """Count a breach of OCPP; log it once per charge point (and engine process)."""
        self._metrics.ocpp_violations.labels(rule[:120]).inc()
        if _LOGGED.first_time(self.id, rule):
            logger.warning(
                "charge point %s breaks OCPP: %s%s (logged once per charge point)",
                self.id,
                rule,
                f" ({detail})" if detail else "",
            )

    # --- calls ---------------------------------------------------------------------------------

    @_on(Action.boot_notification)
    async def on_boot_notification(self, **payload: Any) -> call_result.BootNotification:
        logger.info(
            "charge point %s booted: %s %s",
            self.id,
            payload.get("charge_point_vendor"),
            payload.get("charge_point_model"),
        )
        return call_result.BootNotification(
            current_time=_now(),
            interval=self._settings.ocpp_heartbeat_seconds,
            status=RegistrationStatus.accepted,
        )

    @_on(Action.heartbeat)
    async def on_heartbeat(self, **payload: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @_on(Action.authorize)
    async def on_authorize(self, **payload: Any) -> call_result.Authorize:
        return call_result.Authorize(id_tag_info=_ACCEPTED)

    @_on(Action.status_notification)
    async def on_status_notification(self, **payload: Any) -> call_result.StatusNotification:
        connector = self._connector(payload.get("connector_id"), first=0)
        if connector is not None:
            status = str(payload.get("status") or "Unknown")[:_STATUS_LENGTH]
            error_code = str(payload.get("error_code") or "NoError")[:_STATUS_LENGTH]
            at = _moment(payload.get("timestamp"))
            try:
                async with self._database.admin() as connection:
                    await repository.upsert_connector(
                        connection, self.id, connector, status, error_code, at
                    )
            except ServiceUnavailable as error:
                raise InternalError(description=error.message) from None
        return call_result.StatusNotification()

    @_on(Action.start_transaction)
    async def on_start_transaction(self, **payload: Any) -> call_result.StartTransaction:
        connector = self._connector(payload.get("connector_id"), first=1)
        register = _wh(payload.get("meter_start"))
        at = _moment(payload.get("timestamp"))
        if connector is None or register is None or at is None:
            self.violation("StartTransaction:unusable")
            raise FormatViolationError(
                details={"cause": "a transaction needs connectorId ≥ 1, meterStart, timestamp"}
            )
        id_tag = str(payload.get("id_tag") or "")[:_ID_TAG_LENGTH]
        try:
            async with self._database.admin() as connection:
                transaction = await repository.start_transaction(
                    connection, self.id, connector, id_tag, register, at
                )
        except ServiceUnavailable as error:
            raise InternalError(description=error.message) from None
        await self._store(connector, [Sampled(payload.get("timestamp"), register_kwh=register)])
        return call_result.StartTransaction(transaction_id=transaction, id_tag_info=_ACCEPTED)

    @_on(Action.stop_transaction)
    async def on_stop_transaction(self, **payload: Any) -> call_result.StopTransaction:
        register = _wh(payload.get("meter_stop"))
        at = _moment(payload.get("timestamp"))
        transaction = payload.get("transaction_id")
        connector: int | None = None
        if isinstance(transaction, int) and not isinstance(transaction, bool):
            try:
                async with self._database.admin() as connection:
                    connector = await repository.stop_transaction(
                        connection, self.id, transaction, register, at
                    )
            except ServiceUnavailable as error:
                raise InternalError(description=error.message) from None
        if connector is None:
            # Nothing to book it to; answered all the same, or the charger would send it forever.
            self.violation("StopTransaction:unknown_transaction", f"transactionId {transaction}")
            return call_result.StopTransaction(id_tag_info=_ACCEPTED)
        elements = self._elements(payload.get("transaction_data"))
        if register is not None:
            elements.append(Sampled(payload.get("timestamp"), register_kwh=register))
        await self._store(connector, elements)
        return call_result.StopTransaction(id_tag_info=_ACCEPTED)

    @_on(Action.meter_values)
    async def on_meter_values(self, **payload: Any) -> call_result.MeterValues:
        connector = self._connector(payload.get("connector_id"), first=0)
        if connector is None:
            raise FormatViolationError(details={"cause": "connectorId must be an integer ≥ 0"})
        await self._store(connector, self._elements(payload.get("meter_value")))
        return call_result.MeterValues()

    # --- readings ------------------------------------------------------------------------------

    def _elements(self, meter_values: Any) -> list[Sampled]:
        if meter_values is None:
            return []
        if not isinstance(meter_values, list):
            self.violation("meter_value_not_a_list")
            return []
        elements = [sampled(element) for element in meter_values]
        for element in elements:
            for rule in element.violations:
                self.violation(rule)
            for measurand in element.ignored:
                label = measurand if measurand in MEASURANDS else "other"
                self._metrics.ocpp_ignored_samples.labels(label).inc()
        return elements

    async def _store(self, connector: int, elements: list[Sampled]) -> None:
        """Commit the readings of `elements` (of one connector); return once committed."""
        meter = meter_id(self.id, connector)
        readings: list[Reading] = []
        now = datetime.now(UTC)
        for element in elements:
            if element.voltage is not None:
                self._connectors.voltages[connector] = element.voltage
            if not element.has_energy:
                continue
            voltage = element.voltage or self._connectors.voltages.get(connector)
            if voltage is None:
                voltage = self._settings.ocpp_assumed_voltage
                if voltage is None:
                    self.violation("no_voltage", f"connector {connector}")
                    self._metrics.ocpp_readings.labels("refused").inc()
                    continue
            if not self._may_write(meter):
                self.violation("key_bound_to_another_connector", meter)
                self._metrics.ocpp_readings.labels("refused").inc()
                continue
            checked = validate_reading(
                reading_body(meter, element, voltage, element.timestamp),
                self._limits,
                MeterReading,
                now,
            )
            if isinstance(checked, list):
                problem = checked[0]
                self.violation(f"reading_{problem.rule}", f"{problem.field} {problem.message}")
                self._metrics.ocpp_readings.labels("invalid").inc()
                continue
            readings.append(checked)
        if not readings:
            return
        try:
            self._writer.check_capacity(len(readings))
            outcomes = await self._writer.write(readings, quota_key=self._principal.key_id)
        except (ServiceUnavailable, TooManyNewDevices) as error:
            # Not stored: a CALLERROR, and the charger sends the message again.
            raise InternalError(description=error.message) from None
        except EngineError as error:
            logger.warning("readings of charge point %s failed: %s", self.id, error.message)
            raise InternalError(description="the readings could not be stored") from None
        for reading, outcome in zip(readings, outcomes, strict=True):
            self._metrics.ocpp_readings.labels(outcome.value).inc()
            if outcome is Outcome.CONFLICT:
                self.violation(
                    "reading_conflict",
                    f"{meter} already has another reading at {format_timestamp(reading.timestamp)}",
                )

    def _may_write(self, meter: str) -> bool:
        """A key bound to the charge point (its id) writes every connector's meter."""
        bound = self._principal.device_id
        return bound is None or bound == self.id or bound == meter

    def _connector(self, value: Any, *, first: int) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < first:
            if isinstance(value, str) and value.isdigit() and int(value) >= first:
                self.violation("connector_id_not_an_integer")
                return int(value)
            self.violation("connector_id_invalid", repr(value)[:40])
            return None
        return value


_HANDLED = frozenset(
    {
        Action.boot_notification,
        Action.heartbeat,
        Action.authorize,
        Action.status_notification,
        Action.start_transaction,
        Action.stop_transaction,
        Action.meter_values,
    }
)
_ACCEPTED = IdTagInfo(status=AuthorizationStatus.accepted)


def _now() -> str:
    return format_timestamp(datetime.now(UTC))


def _wh(value: Any) -> float | None:
    """meterStart / meterStop: integer Wh by the schema, in kWh for the engine."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) / 1000.0


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


__all__ = ["CentralSystem", "Connection", "OCPPError"]
