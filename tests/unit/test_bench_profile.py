"""The bench's profile summaries (rounds added up, per-reading steps and layers told apart), and
the writer phase's submissions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.profile import summarize_phases
from bench.readings import Kind, Reading
from bench.report import render_profiles
from bench.writer import submissions

_ROOT = "/srv/engine/.venv/lib/python3.11/site-packages"


def _stack(*frames: str) -> str:
    return ";".join(frames)


def _write(folder: Path, name: str, lines: list[tuple[str, int]]) -> Path:
    path = folder / name
    path.write_text("".join(f"{stack} {count}\n" for stack, count in lines), encoding="utf-8")
    return path


def test_rounds_of_a_phase_are_added_up_and_samples_sorted_by_step_and_layer(
    tmp_path: Path,
) -> None:
    run = "Runner.run (/usr/local/lib/python3.11/asyncio/runners.py:118)"
    decode = "PlainDecoder.batch (energy_ingest/ingest/decoding.py:90)"
    listcomp = "PlainDecoder._readings.<locals>.<listcomp> (energy_ingest/ingest/decoding.py:130)"
    copy = f"Connection.copy_records_to_table ({_ROOT}/asyncpg/connection.py:1100)"
    write = "write_batch (energy_ingest/writer/repository.py:300)"
    execute = f"Connection._do_execute ({_ROOT}/asyncpg/connection.py:1800)"
    send = f"RequestResponseCycle.send ({_ROOT}/uvicorn/protocols/http/httptools_impl.py:500)"
    first = _write(
        tmp_path,
        "engine-1-worker-batch.txt",
        [
            (_stack(run, decode, listcomp), 30),  # per reading, the engine's Python
            (_stack(run, write, copy), 20),  # per reading, C under asyncpg's frame
            (_stack(run, write, execute), 10),  # per batch: a round trip
            (_stack(run, send), 15),
            (_stack(run), 25),
        ],
    )
    second = _write(tmp_path, "engine-1-worker-batch-2.txt", [(_stack(run, decode), 100)])
    single = _write(tmp_path, "engine-1-worker-single.txt", [(_stack(run, send), 10)])

    batch, one = summarize_phases([first, second, single])

    assert batch["file"] == "engine-1-worker-batch"
    assert batch["samples"] == 200
    assert batch["per_reading"] == 0.75  # 30 + 20 + 100 of 200
    assert batch["per_reading_python"] == 0.65  # 30 + 100: the copy's leaf is asyncpg
    layers = batch["layers"]
    assert isinstance(layers, dict)
    assert layers["engine Python"] == 0.65
    assert layers["driver"] == 0.15
    assert layers["HTTP server"] == 0.075
    assert layers["event loop"] == 0.125
    assert one["file"] == "engine-1-worker-single"
    assert one["per_reading"] == 0.0

    table = render_profiles([batch, one])
    assert "| engine-1-worker-batch | 200 | 75% | 65% | 65% | 8% | 12% | 15% | 0% |" in table


def test_the_writer_phase_gets_the_batch_phase_submissions() -> None:
    start = datetime(2026, 12, 5, tzinfo=UTC)
    kinds: list[tuple[Kind, tuple[float, ...]]] = [
        ("meter", (0.5, 230.0)),
        ("vehicle", (50.0, 0.4, 25.0)),
    ]
    readings = [
        Reading(kind, f"{kind}-{device}", start + timedelta(minutes=minute), values)
        for minute in range(3)
        for kind, values in kinds
        for device in range(5)
    ]

    chunks = submissions(readings, batch_size=4)

    # each kind in arrival order, 4 a submission, meter and vehicle submissions alternating
    assert [len(chunk) for chunk in chunks] == [4, 4, 4, 4, 4, 4, 3, 3]
    assert [type(chunk[0]).__name__ for chunk in chunks[:2]] == [
        "ValidMeterReading",
        "ValidVehicleReading",
    ]
    meters = [reading for chunk in chunks[::2] for reading in chunk]
    assert [(r.device_id, r.timestamp) for r in meters] == [
        (r.device_id, r.at) for r in readings if r.kind == "meter"
    ]
