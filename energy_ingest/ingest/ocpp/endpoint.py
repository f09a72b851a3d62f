"""`/ocpp/{chargePointId}`: the WebSocket a charger connects to, its sign-in and its session.

OCPP 1.6J security profile 1: HTTP Basic on the upgrade request, the user the charge point's id
and the password an API key with the ingest scope. A key unbound, or bound to the charge point's
id, writes every connector's meter (`{chargePointId}:{connectorId}`); a key bound to one such
meter id writes that connector only (the others' readings are refused and counted). A key bound
to a vehicle, or to another device, is refused at the upgrade.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re

from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from energy_ingest.auth.guard import Principal
from energy_ingest.auth.keys import Scope
from energy_ingest.errors import EngineError, Forbidden, ServiceUnavailable, Unauthorized
from energy_ingest.ingest.ocpp.central import CentralSystem
from energy_ingest.ingest.schemas import Limits
from energy_ingest.readings import DeviceKind
from energy_ingest.web.state import EngineState

logger = logging.getLogger(__name__)

PATH = "/ocpp/{charge_point_id}"
SUBPROTOCOL = "ocpp1.6"
# A device id without ':' (it separates the connector) and short enough that
# `{chargePointId}:{connectorId}` stays a device id (64 characters).
_CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9._\-]{1,48}")
_REALM = 'Basic realm="energy-ingest OCPP", charset="UTF-8"'


class StarletteConnection:
    """Starlette's WebSocket as the ocpp package wants a connection: `recv()` and `send()`."""

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket

    async def recv(self) -> str:
        message = await self._websocket.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
        text = message.get("text")
        if text is None:  # a binary frame: OCPP-J is text, but UTF-8 bytes are understood
            text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
        return str(text)

    async def send(self, message: str) -> None:
        await self._websocket.send_text(message)


async def _deny(websocket: WebSocket, status: int, message: str, **headers: str) -> None:
    """Refuse the upgrade with an HTTP answer (403 where the server cannot send one)."""
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(
            PlainTextResponse(message + "\n", status_code=status, headers=headers)
        )
    else:
        await websocket.close(code=1008, reason=message[:120])


def _basic_password(authorization: str | None, charge_point_id: str) -> str | None:
    """The password of `Authorization: Basic …` whose user is the charge point; else None."""
    if not authorization:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, separator, password = decoded.partition(":")
    if not separator or user != charge_point_id:
        return None
    return password


async def _sign_in(
    websocket: WebSocket, state: EngineState, charge_point_id: str
) -> Principal | None:
    """The key the charger signed in with, if it may write this charge point; else refused."""
    if not state.keys.enabled:
        return await state.keys.authorize(None, Scope.INGEST)
    password = _basic_password(websocket.headers.get("authorization"), charge_point_id)
    if password is None:
        await _deny(
            websocket,
            401,
            "sign in with HTTP Basic: the charge point id as user, an API key as password",
            **{"WWW-Authenticate": _REALM},
        )
        return None
    try:
        principal = await state.keys.authorize(f"Bearer {password}", Scope.INGEST)
        bound = principal.device_id
        if bound is not None and bound != charge_point_id:
            connector = bound.removeprefix(charge_point_id + ":")
            if connector == bound or not connector.isdigit():
                raise Forbidden(f"this key may only access {principal.bound_to()}")
        if principal.device_kind not in (None, DeviceKind.METER):
            raise Forbidden(f"this key may only access {principal.bound_to()}")
        principal = await principal.bind_kind([DeviceKind.METER])
    except Unauthorized as error:
        await _deny(websocket, 401, error.message, **{"WWW-Authenticate": _REALM})
        return None
    except Forbidden as error:
        await _deny(websocket, 403, error.message)
        return None
    except ServiceUnavailable as error:
        await _deny(websocket, 503, error.message)
        return None
    return principal


async def ocpp_endpoint(websocket: WebSocket) -> None:
    """One charge point's connection, from the upgrade to its close."""
    state: EngineState = websocket.app.state.engine
    settings = state.settings
    charge_point_id: str = websocket.path_params["charge_point_id"]
    if not _CHARGE_POINT_ID.fullmatch(charge_point_id):
        await _deny(websocket, 404, "a charge point id is 1–48 characters of A-Z a-z 0-9 . _ -")
        return
    offered: list[str] = list(websocket.scope.get("subprotocols") or [])
    if SUBPROTOCOL not in offered and (offered or settings.ocpp_strict):
        await _deny(websocket, 400, f"offer the WebSocket subprotocol {SUBPROTOCOL}")
        return
    try:
        principal = await _sign_in(websocket, state, charge_point_id)
    except EngineError as error:
        await _deny(websocket, error.status_code, error.message)
        return
    if principal is None:
        return
    await websocket.accept(subprotocol=SUBPROTOCOL if offered else None)
    central = CentralSystem(
        charge_point_id,
        StarletteConnection(websocket),
        principal=principal,
        settings=settings,
        writer=state.writer,
        database=state.database,
        limits=Limits.from_settings(settings),
        metrics=state.metrics,
    )
    if not offered:
        central.violation("no_subprotocol", f"the upgrade offered none; {SUBPROTOCOL} assumed")
    # One connection per charge point (in this process): a charger that reconnects before its
    # old connection timed out replaces it, as OCPP asks of a central system.
    sessions = _sessions(websocket)
    previous = sessions.get(charge_point_id)
    sessions[charge_point_id] = websocket
    if previous is not None:
        logger.info("charge point %s reconnected: its older connection is closed", charge_point_id)
        with contextlib.suppress(Exception):
            await previous.close(code=1000, reason="replaced by a newer connection")
    state.metrics.ocpp_connections.inc()
    logger.info("charge point %s connected", charge_point_id)
    try:
        await central.start()
    except WebSocketDisconnect:
        pass
    except RuntimeError as error:  # sent to a connection the charger had closed
        logger.info("charge point %s: %s", charge_point_id, error)
    finally:
        if sessions.get(charge_point_id) is websocket:
            del sessions[charge_point_id]
        state.metrics.ocpp_connections.dec()
        logger.info("charge point %s disconnected", charge_point_id)


def _sessions(websocket: WebSocket) -> dict[str, WebSocket]:
    """The charge points connected to this process, on the app (one dict per app)."""
    app_state = websocket.app.state
    sessions: dict[str, WebSocket] | None = getattr(app_state, "ocpp_sessions", None)
    if sessions is None:
        sessions = app_state.ocpp_sessions = {}
    return sessions
