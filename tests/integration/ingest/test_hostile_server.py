"""The probe's hostile ingest requests against a real `energy-ingest serve` over real sockets."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import orjson

from energy_ingest.auth.keys import Scope
from energy_ingest.keys.service import create_key
from energy_ingest.readings import DeviceKind
from tests.faults.processes import EngineProcess, engine_process
from tests.figures import RecordFigures


async def _exchange(port: int, head: bytes, body: bytes) -> tuple[int, bytes]:
    """Send a request (the body in the background: the engine may answer before reading it);
    its status and answer body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send_body() -> None:
        with contextlib.suppress(ConnectionError):
            for start in range(0, len(body), 65536):
                writer.write(body[start : start + 65536])
                await writer.drain()

    writer.write(head)
    sending = asyncio.create_task(send_body())
    try:
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        answer = await reader.readexactly(length)
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    return int(status_line.split()[1]), answer


def _head(path: str, token: str, length: int) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _healthz(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    return int(status_line.split()[1])


async def test_the_probes_requests_against_a_real_engine(
    database_url: str, db: asyncpg.Connection, record_figures: RecordFigures
) -> None:
    async with engine_process(database_url) as engine:
        await engine.start()
        _, token = await create_key(
            db, {Scope.INGEST}, device_id="V-1", device_kind=DeviceKind.VEHICLE, name="device"
        )

        # H1: 16 MiB of 1.6 M unknown keys with the device key (was 422, 162 MB, 11 s).
        probe = ("{" + ",".join(f'"{i:x}":0' for i in range(1_600_000)) + "}").encode()
        status, answer = await _exchange(
            engine.port, _head("/v1/ingest/vehicle", token, len(probe)), probe
        )
        assert status == 413, answer[:300]
        assert len(answer) < 500

        # 10,000 invalid items of its own device: a small answer, and /healthz answered
        # meanwhile (shown, not asserted: how many depends on the machine's speed; the loop
        # turns are counted in test_hostile.py).
        item = {"vehicleId": "V-1", "soc": "x", "kwhDeliveredDc": "y", "batteryTemp": "z"}
        batch = orjson.dumps([item] * 10_000)
        pending = asyncio.create_task(
            _exchange(engine.port, _head("/v1/ingest/vehicle/batch", token, len(batch)), batch)
        )
        answered = 0
        while not pending.done():
            assert await _healthz(engine.port) == 200
            answered += 1
        status, answer = await pending
        assert status == 422
        result = orjson.loads(answer)
        assert result["failed"] == 10_000
        assert len(answer) < 400_000
        record_figures({"/healthz answers while 10,000 invalid items were checked": answered})

        # A client that leaves mid-body: no error, no traceback.
        await _leave_mid_body(engine, token)
        assert await _healthz(engine.port) == 200
        output = engine.output()
        assert "Traceback" not in output, output
        assert "ClientDisconnect" not in output, output


async def _leave_mid_body(engine: EngineProcess, token: str) -> None:
    _, writer = await asyncio.open_connection("127.0.0.1", engine.port)
    writer.write(_head("/v1/ingest/vehicle", token, 200) + b'{"vehicleId": "V-1", ')
    await writer.drain()
    for _ in range(5):  # the engine has read the head and waits for the rest
        assert await _healthz(engine.port) == 200
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()
    for _ in range(20):  # the engine has seen the connection close
        assert await _healthz(engine.port) == 200
    await asyncio.sleep(0.5)
