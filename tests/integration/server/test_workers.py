"""Several workers: each listens on a socket of its own, so that the kernel spreads connections
over them (one shared socket lets the first worker to wake take whole bursts), and the port must
be free of any other listener."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

from energy_ingest.server import ConnectionShares
from tests.faults.processes import children_of, engine_process
from tests.integration.server.raw import close, connect, read_answer, request, send
from tests.support import free_port, wait_until_ready

_LISTEN = "0A"
_ESTABLISHED = "01"


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for descriptor in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(descriptor)
        except OSError:
            continue  # closed while we looked
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _tcp_sockets(port: int, state: str) -> set[int]:
    """Inodes of this machine's IPv4 TCP sockets on local `port` in `state`."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            inodes.add(int(fields[9]))
    return inodes


async def _listening_workers(pid: int, port: int, count: int) -> dict[int, set[int]]:
    """The engine's processes that listen on `port` and their listening sockets, once `count`
    of them do (ready means one worker is; the others may still be starting)."""
    workers: dict[int, set[int]] = {}
    for _ in range(600):  # a bound for a broken engine only
        listening = _tcp_sockets(port, _LISTEN)
        workers = {
            child: _socket_inodes(child) & listening
            for child in children_of(pid)
            if _socket_inodes(child) & listening
        }
        if len(workers) >= count:
            break
        await asyncio.sleep(0.1)
    return workers


async def test_each_worker_listens_on_its_own_socket_and_serves_connections(
    database_url: str,
) -> None:
    async with engine_process(database_url, workers=2) as engine:
        await engine.start()
        workers = await _listening_workers(engine.pid, engine.port, 2)
        assert len(workers) == 2, workers
        # One socket each, not the same one: the kernel chooses between them per connection.
        assert all(len(own) == 1 for own in workers.values()), workers
        assert len(set.union(*workers.values())) == 2, workers
        listening = _tcp_sockets(engine.port, _LISTEN)
        assert not _socket_inodes(engine.pid) & listening, "the supervisor listens too"

        # 64 keep-alive clients, each served once and held: both workers hold some of them
        # (all 64 on one of two sockets chosen by a hash has a chance of 2 in 2^64). A worker
        # above its share may end a connection with its answer (the next test).
        clients = [await connect(engine.port) for _ in range(64)]
        ended = 0
        for reader, writer in clients:
            assert await send(writer, request())
            answer = await read_answer(reader)
            assert answer.status == 200
            if answer.headers.get("connection") == "close":
                ended += 1
                await close(writer)
        established = _tcp_sockets(engine.port, _ESTABLISHED)
        held = {pid: len(_socket_inodes(pid) & established) for pid in workers}
        assert 64 - ended <= sum(held.values()) <= 64, (held, ended)
        assert all(held.values()), held
        for _, writer in clients:
            await close(writer)


async def test_keep_alive_clients_end_up_evenly_spread(database_url: str) -> None:
    async with engine_process(database_url, workers=2) as engine:
        await engine.start()
        workers = list(await _listening_workers(engine.pid, engine.port, 2))
        assert len(workers) == 2, workers
        clients: list[tuple[asyncio.StreamReader, asyncio.StreamWriter] | None] = [None] * 64

        async def ask(index: int) -> None:
            client = clients[index] or await connect(engine.port)
            assert await send(client[1], request())
            answer = await read_answer(client[0])
            assert answer.status == 200
            if answer.headers.get("connection") == "close":
                await close(client[1])  # ended by a worker above its share: reconnect
                clients[index] = None
            else:
                clients[index] = client

        held: list[int] = []
        # Every client asks once a round, until the two workers hold 32 ± 2 connections (the
        # tolerance: one and 2 % of a share); the bound only stops a broken test.
        for _ in range(1_000):
            await asyncio.gather(*(ask(index) for index in range(64)))
            established = _tcp_sockets(engine.port, _ESTABLISHED)
            held = [len(_socket_inodes(pid) & established) for pid in workers]
            if sum(held) == 64 and max(held) <= 34:
                break
            await asyncio.sleep(0.05)
        assert sum(held) == 64, held
        assert max(held) <= 34, held
        for client in clients:
            if client is not None:
                await close(client[1])


def test_several_workers_refuse_a_port_another_server_listens_on(database_url: str) -> None:
    # Another server on the port, itself ready to share it: the engine must not join it.
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as other:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", port))
        other.listen()
        env = {k: v for k, v in os.environ.items() if not k.startswith("EIE_")}
        env["DATABASE_URL"] = database_url
        command = [sys.executable, "-m", "energy_ingest", "serve", "--no-auth", "--workers", "2"]
        result = subprocess.run(
            [*command, "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0, result.stderr
        assert f"cannot bind 127.0.0.1 port {port}" in result.stderr, result.stderr


async def test_a_worker_above_its_share_ends_that_many_connections() -> None:
    shares = ConnectionShares()
    # Another worker (this test's parent process stands in for it) holds 10 connections.
    shares._slots[0], shares._slots[1] = os.getppid(), 10
    mine = set(range(40))
    shares.watch(asyncio.get_running_loop(), mine)
    # 50 in all, 25 each: this worker is 15 over, of which one and 2 % of 25 are tolerated.
    closed = [shares.take_one() for _ in range(20)]
    assert closed == [True] * 13 + [False] * 7
    # Even counts: nothing more to end.
    shares._slots[1] = 40
    await asyncio.sleep(0.3)
    assert not shares.take_one()


def test_workers_without_keys_answer_on_the_port_given_on_the_command_line(
    database_url: str,
) -> None:
    # Each worker builds its settings from the environment: the port (and host) given as
    # options must reach it, or its Host check refuses every request sent to that port.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EIE_", "DATABASE_URL"))}
    env["DATABASE_URL"] = database_url
    port = free_port()
    command = [sys.executable, "-m", "energy_ingest", "serve", "--no-auth", "--workers", "2"]
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        asyncio.run(
            wait_until_ready(f"http://127.0.0.1:{port}", alive=lambda: process.poll() is None)
        )
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
