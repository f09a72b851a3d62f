"""`energy-ingest keys`: API keys, straight in the database (the engine may be running)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import click

from energy_ingest.auth.keys import ApiKey, ordered, parse_scopes, public_id
from energy_ingest.cli.common import DURATION, data_dir_option, database_option, on_database
from energy_ingest.keys.service import (
    InvalidKeyRequest,
    check_key_request,
    create_key,
    list_keys,
    revoke_key,
)
from energy_ingest.readings import DeviceKind


def _json(document: Any) -> str:
    from energy_ingest.web.http import encode_json

    return encode_json(document).decode()


def _describe(key: ApiKey) -> str:
    device = f"; only {key.device_kind or 'device'} {key.device_id}" if key.device_id else ""
    name = f" ({key.name})" if key.name else ""
    expiry = (
        f"; expires {key.expires_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC" if key.expires_at else ""
    )
    return f"key {key.prefix}{name}: {', '.join(ordered(key.scopes))}{device}{expiry}"


@click.group()
def keys() -> None:
    """API keys: create, list, revoke. Works while the engine runs; changes apply at once."""


@keys.command("create")
@click.option(
    "--scope",
    "--scopes",
    "scopes",
    multiple=True,
    required=True,
    envvar="EIE_KEY_SCOPE",
    show_envvar=True,
    help="ingest (write readings), read (live state, analytics), admin (everything: "
    "assignments, keys). Repeat or separate with commas.",
)
@click.option(
    "--device",
    "--device-id",
    "device",
    envvar="EIE_KEY_DEVICE",
    show_envvar=True,
    help="Bind the key to this device id: it may only write (and read) that device.",
)
@click.option(
    "--device-kind",
    type=click.Choice([kind.value for kind in DeviceKind]),
    envvar="EIE_KEY_DEVICE_KIND",
    show_envvar=True,
    help="Required with --device: the key is for the device as a meter or as a vehicle.",
)
@click.option("--name", default="", envvar="EIE_KEY_NAME", show_envvar=True, help="What it is for.")
@click.option(
    "--expires-in",
    type=DURATION,
    envvar="EIE_KEY_EXPIRES_IN",
    show_envvar=True,
    help="The key stops working after this long (e.g. 365d, 90d, 12h); default: never.",
)
@click.option(
    "--json", "as_json", is_flag=True, envvar="EIE_KEY_JSON", help="Print the key as JSON."
)
@database_option
@data_dir_option
def keys_create(
    scopes: tuple[str, ...],
    device: str | None,
    device_kind: str | None,
    name: str,
    expires_in: timedelta | None,
    as_json: bool,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Create a key and print it (standard output, alone on its line) — the only time it is shown.

    \b
    energy-ingest keys create --scope ingest --device M-0042 --device-kind meter
    KEY=$(energy-ingest keys create --scope read --name grafana)
    """
    expires_at = datetime.now(UTC) + expires_in if expires_in is not None else None
    try:
        chosen = parse_scopes(scopes)
        kind = DeviceKind(device_kind) if device_kind else None
        check_key_request(chosen, device, kind, name, expires_at)
    except InvalidKeyRequest as problem:
        option = {
            "scopes": "--scope",
            "deviceId": "--device",
            "deviceKind": "--device-kind",
            "expiresAt": "--expires-in",
        }
        raise click.BadParameter(
            str(problem), param_hint=option.get(problem.field, "--name")
        ) from None
    except ValueError as problem:
        raise click.BadParameter(str(problem), param_hint="--scope") from None

    async def work(connection: asyncpg.Connection) -> tuple[ApiKey, str]:
        return await create_key(
            connection, chosen, device_id=device, device_kind=kind, name=name, expires_at=expires_at
        )

    key, token = on_database(database_url, data_dir, work)
    if as_json:
        click.echo(_json({**key.as_json(), "key": token}))
    else:
        click.echo(token)
    click.echo(f"created {_describe(key)}. It is shown only this once: store it now.", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, envvar="EIE_KEY_JSON", help="Print JSON.")
@database_option
@data_dir_option
def keys_list(as_json: bool, database_url: str | None, data_dir: Path | None) -> None:
    """Every key ever created, revoked ones included (never a secret)."""
    found: list[ApiKey] = on_database(database_url, data_dir, list_keys)
    if as_json:
        click.echo(_json([key.as_json() for key in found]))
        return
    if not found:
        click.echo("no keys", err=True)
        return
    now = datetime.now(UTC)

    def status(key: ApiKey) -> str:
        if key.revoked_at is not None:
            return key.revoked_at.astimezone(UTC).strftime("revoked %Y-%m-%d %H:%M")
        if key.expires_at is not None and key.expires_at <= now:
            return "expired"
        return "active"

    rows = [
        (
            key.prefix,
            ",".join(ordered(key.scopes)),
            f"{key.device_kind or 'any'}:{key.device_id}" if key.device_id else "-",
            key.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
            key.expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            if key.expires_at
            else "never",
            status(key),
            key.name,
        )
        for key in found
    ]
    header = ("ID", "SCOPES", "DEVICE", "CREATED (UTC)", "EXPIRES (UTC)", "STATUS", "NAME")
    widths = [max(len(row[column]) for row in (header, *rows)) for column in range(6)]
    for row in (header, *rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[6]]).rstrip())


@keys.command("revoke")
@click.argument("key")
@database_option
@data_dir_option
def keys_revoke(key: str, database_url: str | None, data_dir: Path | None) -> None:
    """Revoke KEY (its id, or the whole key): every engine process refuses it at once."""
    prefix = public_id(key)
    if prefix is None:
        raise click.BadParameter("give a key id (12 hex digits) or a whole key", param_hint="KEY")

    async def work(connection: asyncpg.Connection) -> ApiKey | None:
        return await revoke_key(connection, prefix)

    revoked: ApiKey | None = on_database(database_url, data_dir, work)
    if revoked is None:
        raise click.ClickException(f"no key has the id {prefix}")
    assert revoked.revoked_at is not None
    click.echo(f"revoked {_describe(revoked)} (since {revoked.revoked_at.isoformat()})")
