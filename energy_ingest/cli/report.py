"""`energy-ingest report`: the fleet table in the terminal, or CSV, straight from the database.

The rows, their statuses, order and CSV columns are those of `GET /v1/analytics/fleet/performance`
for the same window: both call the fleet service (analytics.fleet.service); nothing is computed
here but the layout of the table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import asyncpg
import click

from energy_ingest.analytics.fleet.service import (
    ORDERS,
    SORT_KEYS,
    STATUSES,
    FleetPage,
    csv_lines,
    fleet_page,
    parse_listing,
    resolve_fleet_window,
)
from energy_ingest.analytics.service import HOUR, Window, floor_hour
from energy_ingest.cli.common import (
    DURATION,
    data_dir_option,
    database_option,
    on_database,
    settings_from,
)
from energy_ingest.db.pool import ReadConnection
from energy_ingest.errors import ValidationFailed
from energy_ingest.wire import format_timestamp, parse_timestamp

_OPTION_OF = {"from": "--from", "to": "--window", "status": "--status"}


class _TimestampType(click.ParamType[datetime]):
    name = "timestamp"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return parse_timestamp(str(value))
        except ValueError as exc:
            self.fail(f"{value!r}: {exc}", param, ctx)


TIMESTAMP = _TimestampType()


def report_window(
    window: timedelta, start: datetime | None, end: datetime | None, max_span: timedelta
) -> Window:
    """`--from`/`--to` as given (the endpoint's rules); else `--window` of whole UTC hours ending
    with the current hour, as the endpoint's default window (24 h) is."""
    now = datetime.now(UTC)
    if start is None and end is None:
        end = floor_hour(now) + HOUR
        start = end - window
    return resolve_fleet_window(start, end, now, max_span)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _moment(value: datetime | None) -> str:
    return "never" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def summary_line(fleet: FleetPage) -> str:
    summary = fleet.summary
    loss = summary["energyLossKwh"]
    return (
        f"{format_timestamp(fleet.window.start)} to {format_timestamp(fleet.window.end)}: "
        f"{summary['vehicles']} vehicles, {summary['ok']} ok, "
        f"{summary['underperforming']} underperforming, {summary['implausible']} implausible, "
        f"{summary['insufficientData']} insufficient-data, {summary['silent']} silent; "
        f"AC {summary['energyConsumedAc']:.3f} kWh, DC {summary['energyDeliveredDc']:.3f} kWh, "
        f"efficiency {_number(summary['efficiency'], 3)}, "
        f"loss {_number(loss, 3)} kWh"
    )


HEADER = (
    "VEHICLE",
    "STATUS",
    "EFFICIENCY",
    "AC KWH",
    "DC KWH",
    "LOSS KWH",
    "TEMP C",
    "LAST SEEN (UTC)",
    "METERS",
)
_RIGHT = {2, 3, 4, 5, 6}


def table_lines(rows: list[dict[str, Any]]) -> list[str]:
    """Aligned columns, one line per row, the meter ids last (their width varies most)."""
    cells = [
        (
            row["vehicleId"],
            row["status"],
            _number(row["efficiency"], 3),
            _number(row["energyConsumedAc"], 3),
            _number(row["energyDeliveredDc"], 3),
            _number(row["energyLossKwh"], 3),
            _number(row["averageBatteryTemp"], 1),
            _moment(row["lastSeen"]),
            ",".join(row["meterIds"]) or "-",
        )
        for row in rows
    ]
    last = len(HEADER) - 1
    widths = [max(len(line[column]) for line in (HEADER, *cells)) for column in range(last)]
    lines = []
    for line in (HEADER, *cells):
        aligned = [
            cell.rjust(width) if column in _RIGHT else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=False))
        ]
        lines.append("  ".join([*aligned, line[last]]).rstrip())
    return lines


@click.command()
@click.option(
    "--window",
    type=DURATION,
    default="24h",
    show_default=True,
    envvar="EIE_REPORT_WINDOW",
    show_envvar=True,
    help="How far back: whole UTC hours ending with the current one (e.g. 24h, 7d; at most "
    "31 days), as the fleet endpoint's default window.",
)
@click.option(
    "--from",
    "start",
    type=TIMESTAMP,
    envvar="EIE_REPORT_FROM",
    show_envvar=True,
    help="Start of the window, ISO 8601 with an offset; with --to, instead of --window.",
)
@click.option(
    "--to",
    "end",
    type=TIMESTAMP,
    envvar="EIE_REPORT_TO",
    show_envvar=True,
    help="End of the window, ISO 8601 with an offset (default: 24 h after --from).",
)
@click.option(
    "--status",
    envvar="EIE_REPORT_STATUS",
    show_envvar=True,
    help=f"Only these statuses, a comma list of {', '.join(STATUSES)}.",
)
@click.option(
    "--sort",
    type=click.Choice(SORT_KEYS),
    default="efficiency",
    show_default=True,
    envvar="EIE_REPORT_SORT",
    show_envvar=True,
)
@click.option(
    "--order",
    type=click.Choice(ORDERS),
    default="asc",
    show_default=True,
    envvar="EIE_REPORT_ORDER",
    show_envvar=True,
    help="Nulls come last either way.",
)
@click.option(
    "--csv",
    "as_csv",
    is_flag=True,
    envvar="EIE_REPORT_CSV",
    show_envvar=True,
    help="Every row as CSV on standard output (the endpoint's ?format=csv columns).",
)
@database_option
@data_dir_option
def report(
    window: timedelta,
    start: datetime | None,
    end: datetime | None,
    status: str | None,
    sort: str,
    order: str,
    as_csv: bool,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Every vehicle's efficiency over a window, worst first: the fleet performance answer.

    \b
    energy-ingest report
    energy-ingest report --window 7d --status underperforming,implausible
    energy-ingest report --csv > fleet.csv
    """
    settings = settings_from(database_url=database_url, data_dir=data_dir)
    try:
        listing = parse_listing(status, sort, order)
        chosen = report_window(window, start, end, settings.max_analytics_span)
    except ValidationFailed as problem:
        first = problem.problems[0]
        hint = _OPTION_OF.get(first.field, first.field)
        if first.field == "to" and (start is not None or end is not None):
            hint = "--to"
        raise click.BadParameter(first.message, param_hint=hint) from None

    async def work(connection: asyncpg.Connection) -> FleetPage:
        return await fleet_page(
            cast(ReadConnection, connection),
            chosen,
            settings.efficiency_threshold,
            datetime.now(UTC),
            listing,
            None,
            rules=settings.split_rules,
            threshold_mode=settings.threshold_mode,
        )

    fleet: FleetPage = on_database(database_url, data_dir, work)
    rows = fleet.rows
    if as_csv:
        for line in csv_lines(fleet.window, rows):
            click.echo(line, nl=False)
        return
    click.echo(summary_line(fleet))
    if rows:
        click.echo()
        for line in table_lines(rows):
            click.echo(line)
    else:
        click.echo("no vehicle matches", err=True)
