"""Raw HTTP/1.1 over asyncio sockets: what a hostile or broken client sends, byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

# Generous bounds for a shared, noisy machine: they only stop a broken test, nothing is timed.
WAIT_SECONDS = 30.0


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    return status, headers


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One answer (head and Content-Length body); the connection may stay open."""
    async with asyncio.timeout(WAIT_SECONDS):
        head = await reader.readuntil(b"\r\n\r\n")
        status, headers = parse_head(head)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Answer(status, headers, body)


async def closed(reader: asyncio.StreamReader) -> bool:
    """Whether the server ends the connection (EOF or reset) with nothing more to read."""
    try:
        async with asyncio.timeout(WAIT_SECONDS):
            return await reader.read(1) == b""
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def send(writer: asyncio.StreamWriter, data: bytes) -> bool:
    """Send; False once the server has closed the connection."""
    try:
        writer.write(data)
        await writer.drain()
    except ConnectionError:
        return False
    return True


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


def request(path: str = "/healthz", host: str = "127.0.0.1", extra: bytes = b"") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\n".encode() + extra + b"\r\n"
