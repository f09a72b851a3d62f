"""The `energy-ingest` command: serve the API, manage the database and its keys, simulate a fleet.

One module per command group: `serve`, `db`, `keys`, `report`, `simulate` (simulate and demo),
`history` (import and export);
what they share (settings, the database connected once, failures as one line) is in `common`. The
simulator's own options live beside it, in `energy_ingest.simulator.options`.
"""

from __future__ import annotations

import os
from typing import Any

import click

from energy_ingest.cli import db, history, keys, report, serve, simulate
from energy_ingest.cli.common import EXPECTED_FAILURES, failure
from energy_ingest.telemetry.logs import configure_logging


class _Boundary(click.Group):
    """The error boundary of every command: expected failures become one line, not a traceback.

    Anything else (a bug) keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED_FAILURES as error:
            raise failure(error) from error


@click.group(cls=_Boundary)
@click.option(
    "--log-level",
    envvar="EIE_LOG_LEVEL",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
)
@click.version_option(package_name="energy-ingest")
@click.option(
    "--log-format",
    envvar="EIE_LOG_FORMAT",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "json", "text"]),
    help="JSON lines (with request ids) for collectors, or text for people; auto: text when "
    "standard error is a terminal, JSON otherwise.",
)
def main(log_level: str, log_format: str) -> None:
    """Energy Ingestion Engine: meter and vehicle telemetry, live state, efficiency analytics."""
    configure_logging(log_level, log_format)
    # Worker processes set up their logging from these.
    os.environ["EIE_LOG_LEVEL"] = log_level
    os.environ["EIE_LOG_FORMAT"] = log_format


main.add_command(serve.serve)
main.add_command(db.db)
main.add_command(keys.keys)
main.add_command(report.report)
main.add_command(simulate.simulate)
main.add_command(simulate.demo)
main.add_command(history.import_readings)
main.add_command(history.export)
