"""`energy-ingest db`: database administration."""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from pathlib import Path

import click

from energy_ingest.cli.common import (
    data_dir_option,
    database_option,
    migrate_database,
    resolve_database_url,
    settings_from,
)


@click.group()
def db() -> None:
    """Database administration."""


@db.command("migrate")
@database_option
@data_dir_option
def db_migrate(database_url: str | None, data_dir: Path | None) -> None:
    """Apply pending schema migrations (start-up does this too)."""
    settings = settings_from(database_url=database_url, data_dir=data_dir)
    with ExitStack() as stack:
        applied = asyncio.run(migrate_database(resolve_database_url(stack, settings)))
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")
