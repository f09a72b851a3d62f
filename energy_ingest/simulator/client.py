"""The engine's HTTP API as the simulator uses it: assignments, ingest with retries, analytics."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import httpx

Kind = Literal["meter", "vehicle"]
Sleep = Callable[[float], Awaitable[None]]

_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class UnexpectedAnswer(Exception):
    """The engine answered something the simulator cannot carry on from."""


class AccessRefused(UnexpectedAnswer):
    """The engine refused the API key (401) or its scope (403)."""


class EngineUnreachable(UnexpectedAnswer):
    """No answer from the engine after every retry."""


def wire_time(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, as the engine's API writes timestamps."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.microsecond // 1000:03d}Z"
    )


@dataclass(slots=True)
class Delivered:
    """What the engine did with the readings of one request."""

    stored: int = 0
    duplicates: int = 0
    rejected: int = 0
    unavailable: int = 0  # 503 answers retried (nothing was stored by them)
    transport_errors: int = 0  # connection failures retried
    messages: tuple[str, ...] = ()


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.05, float(response.headers.get("retry-after", "1")))
    except ValueError:
        return 1.0


class EngineClient:
    """Talks to one engine through an `httpx.AsyncClient` whose base URL is the engine.

    The client is injected so tests can hand in one bound to the app over ASGI. Overload (503)
    is retried after `Retry-After`, a lost connection after a short back-off: re-sending is
    safe because the engine stores a re-sent reading once and answers "duplicate".
    """

    def __init__(
        self, http: httpx.AsyncClient, *, attempts: int = 30, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.http = http
        self._attempts = attempts
        self._sleep = sleep

    async def _request(
        self, method: str, path: str, delivered: Delivered | None = None, **kwargs: Any
    ) -> httpx.Response:
        failures = 0
        for attempt in range(self._attempts):
            try:
                response = await self.http.request(method, path, **kwargs)
            except httpx.TransportError as error:
                failures += 1
                if delivered is not None:
                    delivered.transport_errors += 1
                if attempt + 1 == self._attempts:
                    raise EngineUnreachable(f"{method} {path}: {error!r}") from error
                await self._sleep(_BACKOFF_SECONDS[min(failures, len(_BACKOFF_SECONDS)) - 1])
                continue
            if response.status_code in (401, 403):
                raise AccessRefused(
                    f"{method} {path}: {response.status_code} {response.text}; the simulator "
                    "needs an admin key (it assigns meters): pass it with --api-key or EIE_API_KEY"
                )
            if response.status_code != 503:
                return response
            if delivered is not None:
                delivered.unavailable += 1
            await self._sleep(_retry_after(response))
        raise EngineUnreachable(f"{method} {path}: still unavailable after {self._attempts} tries")

    async def is_ready(self) -> bool:
        """Whether /readyz says the engine can take readings."""
        try:
            response = await self.http.get("/readyz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    async def has_assignments(self, vehicle_id: str) -> bool:
        """Whether the vehicle has ever had a meter assigned."""
        response = await self._request("GET", f"/v1/vehicles/{vehicle_id}/assignments")
        if response.status_code != 200:
            raise UnexpectedAnswer(f"listing assignments of {vehicle_id}: {response.text}")
        return bool(response.json())

    async def assign_meter(self, vehicle_id: str, meter_id: str, start: datetime) -> None:
        """`meter_id` feeds `vehicle_id` from `start` on (ending its previous assignment)."""
        response = await self._request(
            "PUT",
            f"/v1/vehicles/{vehicle_id}/meter",
            json={"meterId": meter_id, "from": wire_time(start)},
        )
        if response.status_code not in (200, 201):
            raise UnexpectedAnswer(
                f"assigning meter {meter_id} to vehicle {vehicle_id} from {wire_time(start)}: "
                f"{response.status_code} {response.text}"
            )

    async def send_batch(self, kind: Kind, body: bytes) -> Delivered:
        """POST a JSON array of one kind of reading to its batch endpoint."""
        delivered = Delivered()
        response = await self._request(
            "POST",
            f"/v1/ingest/{kind}/batch",
            delivered,
            content=body,
            headers={"content-type": "application/json"},
        )
        if response.status_code not in (201, 422):
            raise UnexpectedAnswer(
                f"batch of {kind} readings: {response.status_code} {response.text}"
            )
        answer = response.json()
        if "stored" not in answer:  # a 422 about the request itself, not its items
            raise UnexpectedAnswer(f"batch of {kind} readings refused: {response.text}")
        delivered.stored = answer["stored"]
        delivered.duplicates = answer["duplicates"]
        delivered.rejected = answer["failed"]
        delivered.messages = tuple(error["message"] for error in answer["errors"][:3])
        return delivered

    async def send_one(self, kind: Kind, body: bytes) -> Delivered:
        """POST one reading to its single-reading endpoint, as a device does."""
        delivered = Delivered()
        response = await self._request(
            "POST",
            f"/v1/ingest/{kind}",
            delivered,
            content=body,
            headers={"content-type": "application/json"},
        )
        if response.status_code == 201:
            delivered.stored = 1
        elif response.status_code == 200 and response.json().get("status") == "duplicate":
            delivered.duplicates = 1
        elif response.status_code in (409, 422):
            delivered.rejected = 1
            delivered.messages = (str(response.json().get("message", response.text)),)
        else:
            raise UnexpectedAnswer(f"one {kind} reading: {response.status_code} {response.text}")
        return delivered

    async def performance(self, vehicle_id: str, start: datetime, end: datetime) -> dict[str, Any]:
        """The engine's efficiency verdict for the vehicle over [start, end)."""
        response = await self._request(
            "GET",
            f"/v1/analytics/performance/{vehicle_id}",
            params={"from": wire_time(start), "to": wire_time(end)},
        )
        if response.status_code != 200:
            raise UnexpectedAnswer(
                f"performance of {vehicle_id}: {response.status_code} {response.text}"
            )
        answer: dict[str, Any] = response.json()
        return answer
