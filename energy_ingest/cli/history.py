"""`energy-ingest import` and `export`: history in from a file, and out to one, straight from the
database (like `keys` and `report`: whoever can reach the database may run them, nobody else).

Import validates each line with the ingest endpoints' own rules and writes through the writer's
own COPY path (energy_ingest.ingest.importer); export streams COPY … TO STDOUT
(energy_ingest.history). Nothing here but options, the progress line and the summary.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO

import asyncpg
import click
import orjson

from energy_ingest.cli.common import (
    CommandFailed,
    data_dir_option,
    database_option,
    on_database,
    on_database_url,
    settings_from,
)
from energy_ingest.cli.report import TIMESTAMP
from energy_ingest.db.partitions import PartitionManager
from energy_ingest.db.pool import open_database
from energy_ingest.history.repository import ExportFormat, export_readings
from energy_ingest.ingest.files import FileFormat, HeaderInvalid, read_lines
from energy_ingest.ingest.importer import FileImport, ImportRules, ImportSummary, Refusal
from energy_ingest.readings import DeviceKind
from energy_ingest.wire import DEVICE_ID_RULE, is_device_id

REJECTED_EXIT_CODE = 3
"""Exit code of an import in which a line was rejected (invalid) or conflicted; every other
line was stored (or was already there)."""
_SHOWN_REFUSALS = 10
"""Without --rejects, the first refused lines are shown on standard error, no more."""
_PROGRESS_SECONDS = 0.2


class ProgressLine:
    """A one-line counter on standard error (lines, and the share of a file's bytes read)."""

    def __init__(self, total_bytes: int | None, stream: IO[str]) -> None:
        self._total = total_bytes
        self._stream = stream
        self._bytes = 0
        self._lines = 0
        self._shown_at = 0.0

    def __call__(self, size: int) -> None:
        self._bytes += size
        self._lines += 1
        now = time.monotonic()
        if now - self._shown_at >= _PROGRESS_SECONDS:
            self._shown_at = now
            self._show()

    def _show(self) -> None:
        share = f"  {100 * self._bytes / self._total:5.1f} %" if self._total else ""
        self._stream.write(f"\r{self._lines:>12,} lines read{share}")
        self._stream.flush()

    def finish(self) -> None:
        self._show()
        self._stream.write("\n")
        self._stream.flush()


def _file_size(source: BinaryIO) -> int | None:
    """The size of a regular file; None for a pipe or a stream without a descriptor."""
    try:
        status = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both
        return None
    return status.st_size if stat.S_ISREG(status.st_mode) else None


def _plural(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def summary_line(summary: ImportSummary, seconds: float) -> str:
    rate = summary.received / seconds if seconds > 0 else 0.0
    return (
        f"{_plural(summary.received, 'line')}: {summary.stored:,} stored,"
        f" {_plural(summary.duplicates, 'duplicate')}, {_plural(summary.conflicts, 'conflict')},"
        f" {summary.rejected:,} rejected; {seconds:.1f} s ({rate:,.0f} lines/s)"
    )


def _refusal_line(refusal: Refusal) -> str:
    rules = ", ".join(sorted({problem.rule for problem in refusal.problems}))
    return f"line {refusal.line}: {refusal.as_json()['message']} ({rules})"


@click.command("import")
@click.argument("source", type=click.File("rb"), metavar="FILE|-")
@click.option(
    "--format",
    "file_format",
    type=click.Choice(["auto", "csv", "jsonl"]),
    default="auto",
    show_default=True,
    envvar="EIE_IMPORT_FORMAT",
    show_envvar=True,
    help="auto: JSON Lines when the first line is a JSON object, else CSV with a header.",
)
@click.option(
    "--rejects",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="EIE_IMPORT_REJECTS",
    show_envvar=True,
    help="Write every line not stored here, one JSON object a line: line, reason (invalid or "
    "conflict), message, fields (field, rule, message), input. Without it the first "
    f"{_SHOWN_REFUSALS} are shown on standard error.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    envvar="EIE_IMPORT_JSON",
    show_envvar=True,
    help="Print the summary as JSON.",
)
@database_option
@data_dir_option
def import_readings(
    source: BinaryIO,
    file_format: str,
    rejects: Path | None,
    as_json: bool,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Load readings from FILE (or - for standard input) into history: CSV whose header names
    the JSON fields (meterId,kwhConsumedAc,voltage,timestamp and/or
    vehicleId,soc,kwhDeliveredDc,batteryTemp,timestamp), or JSON Lines; each line is a meter or
    a vehicle reading by its id field, so a file may mix them.

    Each line is validated as an HTTP batch item is (same rules, same messages), except that
    any past timestamp is accepted (not only EIE_MAX_BACKFILL); one in the future beyond
    EIE_MAX_CLOCK_SKEW is still refused, and one older than EIE_RETENTION_DAYS (if set) is
    refused (rule retention). Duplicates and conflicts are decided as over HTTP: importing a
    file twice stores nothing the second time. The rollups include every stored line when the
    command returns.

    Admin only: it writes to the database directly (--database-url, or the embedded one), with
    no API key, so it is for whoever can reach the database.

    Exit code 0 when every line was stored or already there; 3 when a line was rejected or
    conflicted (the others are stored); 1 when the import could not run (database
    unreachable, a CSV header no reading fits).

    \b
    energy-ingest import last-year.csv --rejects rejects.jsonl
    zcat readings.jsonl.gz | energy-ingest import - --json
    """
    settings = settings_from(database_url=database_url, data_dir=data_dir)
    rules = ImportRules.from_settings(settings)
    chosen: FileFormat | None = (
        "csv" if file_format == "csv" else "jsonl" if file_format == "jsonl" else None
    )
    stderr = sys.stderr
    progress = ProgressLine(_file_size(source), stderr) if stderr.isatty() else None
    shown = 0

    with ExitStack() as stack:
        rejects_file = stack.enter_context(rejects.open("wb")) if rejects is not None else None

        def refused(refusal: Refusal) -> None:
            nonlocal shown
            if rejects_file is not None:
                rejects_file.write(orjson.dumps(refusal.as_json()) + b"\n")
            elif shown < _SHOWN_REFUSALS:
                shown += 1
                click.echo(_refusal_line(refusal), err=True)

        async def work(url: str) -> ImportSummary:
            async with open_database(url, settings) as database:
                partitions = PartitionManager(database.write_pool)
                await partitions.refresh()
                job = FileImport(
                    database,
                    partitions,
                    rules,
                    refused,
                    chunk_size=settings.writer_batch_size,
                    concurrency=settings.writer_concurrency,
                )
                return await job.run(read_lines(source, chosen, progress))

        started = time.perf_counter()
        try:
            summary: ImportSummary = on_database_url(settings, work)
        except HeaderInvalid as error:
            raise CommandFailed(str(error)) from error
        finally:
            if progress is not None:
                progress.finish()
        seconds = time.perf_counter() - started

    if as_json:
        click.echo(orjson.dumps({**summary.as_json(), "seconds": round(seconds, 3)}).decode())
    else:
        click.echo(summary_line(summary, seconds))
        if shown and summary.failed > shown:
            click.echo(
                f"… and {summary.failed - shown:,} more not stored: --rejects FILE lists them",
                err=True,
            )
    if summary.failed:
        click.get_current_context().exit(REJECTED_EXIT_CODE)


@click.command("export")
@click.option(
    "--kind",
    type=click.Choice([kind.value for kind in DeviceKind]),
    required=True,
    envvar="EIE_EXPORT_KIND",
    show_envvar=True,
    help="Meter (AC) or vehicle (DC) readings.",
)
@click.option(
    "--from",
    "start",
    type=TIMESTAMP,
    required=True,
    envvar="EIE_EXPORT_FROM",
    show_envvar=True,
    help="First moment of the window (included), ISO 8601 with an offset.",
)
@click.option(
    "--to",
    "end",
    type=TIMESTAMP,
    envvar="EIE_EXPORT_TO",
    show_envvar=True,
    help="End of the window (excluded), ISO 8601 with an offset; default: now.",
)
@click.option(
    "--device",
    envvar="EIE_EXPORT_DEVICE",
    show_envvar=True,
    help="Only this meter's or vehicle's readings.",
)
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["csv", "jsonl"]),
    default="csv",
    show_default=True,
    envvar="EIE_EXPORT_FORMAT",
    show_envvar=True,
    help="CSV with the JSON field names as header, or JSON Lines.",
)
@database_option
@data_dir_option
def export(
    kind: str,
    start: datetime,
    end: datetime | None,
    device: str | None,
    export_format: ExportFormat,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Stream the readings of one kind in [--from, --to) to standard output, as sent: device
    ids, values as the decimals the devices sent, timestamps as the API writes them. An export
    is a file `energy-ingest import` takes as it is (into the same database: every line a
    duplicate). Each device's readings in time order; memory stays constant however long the
    window.

    \b
    energy-ingest export --kind meter --from 2025-01-01T00:00:00Z --to 2026-01-01T00:00:00Z > m.csv
    energy-ingest export --kind vehicle --from 2026-11-01T00:00:00Z --device V-1 --format jsonl
    """
    stop = end if end is not None else datetime.now(UTC)
    if stop <= start:
        raise click.BadParameter("must be after --from", param_hint="--to")
    if device is not None and not is_device_id(device):
        raise click.BadParameter(DEVICE_ID_RULE, param_hint="--device")
    out = sys.stdout.buffer

    async def write(chunk: bytes) -> None:
        out.write(chunk)

    async def work(connection: asyncpg.Connection) -> None:
        await export_readings(
            connection, DeviceKind(kind), start, stop, device, export_format, write
        )

    on_database(database_url, data_dir, work)
    out.flush()
