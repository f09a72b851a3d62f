"""The `energy-ingest` command: serve the API, manage the database."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import click
from pydantic import ValidationError

from energy_ingest.auth.keys import ApiKey, ordered, parse_scopes, public_id
from energy_ingest.config import Settings
from energy_ingest.db.embedded import embedded_postgres
from energy_ingest.db.migrations import migrate, pending_versions
from energy_ingest.errors import EngineError
from energy_ingest.keys.service import (
    InvalidKeyRequest,
    check_key_request,
    create_key,
    list_keys,
    revoke_key,
)
from energy_ingest.readings import DeviceKind
from energy_ingest.telemetry.logs import configure_logging
from energy_ingest.telemetry.metrics import MULTIPROCESS_ENV

if TYPE_CHECKING:
    from energy_ingest.simulator.command import RunOptions

F = TypeVar("F", bound=Callable[..., Any])

logger = logging.getLogger(__name__)


class CommandFailed(click.ClickException):
    """An expected failure (database unreachable, a file missing…): one `Error: …` line, exit 1.

    With --log-level debug the traceback of its cause is printed first, for a bug report.
    """

    def show(self, file: IO[Any] | None = None) -> None:
        cause = self.__cause__
        if cause is not None and logging.getLogger().isEnabledFor(logging.DEBUG):
            traceback.print_exception(cause, file=file or sys.stderr)
        super().show(file)


class SettingsInvalid(CommandFailed):
    """Settings that break a rule: one line, exit 2 as for any other usage mistake."""

    exit_code = 2


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _settings_problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in problem['loc']) or 'settings'}: "
        + _one_line(str(problem["msg"]).removeprefix("Value error, "))
        for problem in error.errors()
    )


def _settings(**overrides: Any) -> Settings:
    """Environment first, then the options given on the command line."""
    try:
        return Settings(**{key: value for key, value in overrides.items() if value is not None})
    except ValidationError as error:
        raise SettingsInvalid(_settings_problems(error)) from error


def _redact(url: str) -> str:
    """`url` without its password: what an error message may show."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


def _reason(error: BaseException) -> str:
    """What went wrong, in words: 'Connection refused' rather than '[Errno 111] …'."""
    if isinstance(error, TimeoutError):
        return "timed out"
    text = _one_line(str(error))
    if isinstance(error, OSError) and error.errno is not None:
        words = os.strerror(error.errno)
        text = text.removeprefix(f"[Errno {error.errno}] ")
        return text if text.startswith(words) else f"{words}: {text}"
    return text or type(error).__name__


# Failures of the world the command runs in, not of the command, and the engine's own refusals
# (an admin key file already there): each is one line, exit 1.
_EXPECTED_FAILURES = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    ValidationError,
    EngineError,
)


def _failure(error: BaseException) -> CommandFailed:
    if isinstance(error, ValidationError):
        return SettingsInvalid(_settings_problems(error))
    if isinstance(error, asyncpg.PostgresError):
        return CommandFailed(f"database: {_reason(error)}")
    return CommandFailed(_reason(error))


class _Boundary(click.Group):
    """The error boundary of every command: expected failures become one line, not a traceback.

    Anything else (a bug) keeps its traceback.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _EXPECTED_FAILURES as error:
            raise _failure(error) from error


async def _connect(url: str) -> asyncpg.Connection:
    """A connection to `url`, or a CommandFailed that names the address and the reason."""
    try:
        return await asyncpg.connect(url)
    except (*_EXPECTED_FAILURES, ValueError) as error:
        raise CommandFailed(
            f"cannot connect to the database at {_redact(url)}: {_reason(error)}"
        ) from error


def _database_url(stack: ExitStack, settings: Settings) -> str:
    if settings.database_url:
        return settings.database_url
    try:
        url: str = stack.enter_context(embedded_postgres(settings.data_dir))
    except (RuntimeError, subprocess.SubprocessError) as error:  # initdb, pg_ctl: their words
        raise CommandFailed(
            f"the embedded PostgreSQL in {settings.data_dir} did not start: {_one_line(str(error))}"
        ) from error
    click.echo(f"embedded PostgreSQL running, data in {settings.data_dir.resolve()}", err=True)
    return url


_database_option = click.option(
    "--database-url",
    envvar=["EIE_DATABASE_URL", "DATABASE_URL"],
    help="PostgreSQL URL. Unset: an embedded PostgreSQL with its data in --data-dir.",
)
_data_dir_option = click.option(
    "--data-dir",
    envvar="EIE_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Data folder of the embedded PostgreSQL (default ./.energy-ingest).",
)


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


@main.command()
@click.option("--host", envvar="EIE_HOST", help="Address to bind (default 127.0.0.1).")
@click.option("--port", envvar="EIE_PORT", type=int, help="Port to bind (default 8000).")
@click.option("--workers", envvar="EIE_WORKERS", type=int, help="Worker processes (default 1).")
@click.option(
    "--auth/--no-auth",
    "auth_enabled",
    envvar="EIE_AUTH_ENABLED",
    default=None,
    help="Require API keys (the default). --no-auth is for local use and is refused unless "
    "the engine listens on a loopback address.",
)
@click.option(
    "--admin-key-file",
    envvar="EIE_ADMIN_KEY_FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where the first start also writes the admin key it creates (mode 0600).",
)
@_database_option
@_data_dir_option
def serve(
    host: str | None,
    port: int | None,
    workers: int | None,
    auth_enabled: bool | None,
    admin_key_file: Path | None,
    database_url: str | None,
    data_dir: Path | None,
) -> None:
    """Run the HTTP API (embedded PostgreSQL unless a database URL is given).

    The first start on a database without API keys creates an admin key and prints it once.
    """
    from energy_ingest.app import create_app
    from energy_ingest.server import serve as run_server

    settings = _settings(
        host=host,
        port=port,
        workers=workers,
        auth_enabled=auth_enabled,
        admin_key_file=admin_key_file,
        database_url=database_url,
        data_dir=data_dir,
    )
    if not settings.auth_enabled:
        click.echo(
            f"authentication is OFF: anyone who can reach {settings.host} may write and read",
            err=True,
        )
    with ExitStack() as stack, _stop_on_signal():
        url = _database_url(stack, settings)
        settings = settings.model_copy(update={"database_url": url})
        # The start-up's database work (wait for it, migrate, mint the first admin key) runs
        # here, before any server: a database that cannot be reached or migrated is then one
        # line, not a start-up traceback, and each process's own start-up finds nothing to do.
        asyncio.run(_migrate(url, settings, attempts=_SERVE_CONNECT_ATTEMPTS))
        if settings.workers == 1:
            run_server(create_app(settings), settings)
            return
        # Several processes share the port; each builds its app from the environment, so the
        # resolved URL (perhaps the embedded server's) is handed down that way.
        os.environ["EIE_DATABASE_URL"] = url
        os.environ["EIE_AUTH_ENABLED"] = str(settings.auth_enabled).lower()
        if not os.environ.get(MULTIPROCESS_ENV):
            # Each worker writes its metric samples here; a scrape of any of them sums all.
            os.environ[MULTIPROCESS_ENV] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="energy-ingest-metrics-")
            )
        run_server(
            "energy_ingest.app:create_app_from_environment",
            settings,
            factory=True,
            workers=settings.workers,
        )


class _Stopped(Exception):
    """Raised by the SIGTERM handler so that clean-up (the embedded server) runs on the way out."""


@contextmanager
def _stop_on_signal() -> Iterator[None]:
    """Turn SIGTERM and Ctrl-C into an orderly return (exit status 0).

    uvicorn shuts down gracefully on a signal and then re-raises it with the previous handler;
    this handler makes that an exception, so every context (the embedded server) is closed.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except (_Stopped, KeyboardInterrupt):
        click.echo("stopped", err=True)
    finally:
        signal.signal(signal.SIGTERM, previous)


# Like the engine's own start-up: a database still starting (compose) gets about 30 s.
_SERVE_CONNECT_ATTEMPTS = 30


async def _migrate(url: str, settings: Settings | None = None, attempts: int = 1) -> list[str]:
    """Apply migrations; with `settings` (serving), also mint the first admin key if due.

    With `attempts` > 1, a database that refuses connections is retried once a second.
    """
    from energy_ingest.keys.bootstrap import ensure_admin_key

    for attempt in range(1, attempts):
        try:
            connection = await asyncpg.connect(url)
            break
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.PostgresConnectionError):
            logger.warning("database not reachable yet (attempt %d); retrying", attempt)
            await asyncio.sleep(1.0)
    else:
        connection = await _connect(url)
    try:
        applied = await migrate(connection)
        if settings is not None:
            await ensure_admin_key(connection, settings)
        return applied
    finally:
        await connection.close()


@main.group()
def db() -> None:
    """Database administration."""


@db.command("migrate")
@_database_option
@_data_dir_option
def db_migrate(database_url: str | None, data_dir: Path | None) -> None:
    """Apply pending schema migrations (start-up does this too)."""
    settings = _settings(database_url=database_url, data_dir=data_dir)
    with ExitStack() as stack:
        applied = asyncio.run(_migrate(_database_url(stack, settings)))
    click.echo("applied: " + ", ".join(applied) if applied else "schema is up to date")


class _DurationType(click.ParamType[timedelta]):
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        from energy_ingest.simulator.command import parse_duration

        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_DURATION = _DurationType()


# --- keys: API keys, straight in the database (the engine may be running) -------------------


def _on_database(
    database_url: str | None, data_dir: Path | None, work: Callable[[asyncpg.Connection], Any]
) -> Any:
    """Run `work` on a migrated database: the URL's, or the embedded one (running or not).

    A database with pending migrations is refused, never migrated: a listing pointed at
    production must not change its schema.
    """
    settings = _settings(database_url=database_url, data_dir=data_dir)

    async def run(url: str) -> Any:
        connection = await _connect(url)
        try:
            pending = await pending_versions(connection)
            if pending:
                raise CommandFailed(
                    f"the database at {_redact(url)} has {len(pending)} pending "
                    f"migration{'s' if len(pending) > 1 else ''} ({', '.join(pending)}): "
                    "run energy-ingest db migrate first"
                )
            return await work(connection)
        finally:
            await connection.close()

    with ExitStack() as stack:
        return asyncio.run(run(_database_url(stack, settings)))


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


@main.group()
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
    type=_DURATION,
    envvar="EIE_KEY_EXPIRES_IN",
    show_envvar=True,
    help="The key stops working after this long (e.g. 365d, 90d, 12h); default: never.",
)
@click.option(
    "--json", "as_json", is_flag=True, envvar="EIE_KEY_JSON", help="Print the key as JSON."
)
@_database_option
@_data_dir_option
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

    key, token = _on_database(database_url, data_dir, work)
    if as_json:
        click.echo(_json({**key.as_json(), "key": token}))
    else:
        click.echo(token)
    click.echo(f"created {_describe(key)}. It is shown only this once: store it now.", err=True)


@keys.command("list")
@click.option("--json", "as_json", is_flag=True, envvar="EIE_KEY_JSON", help="Print JSON.")
@_database_option
@_data_dir_option
def keys_list(as_json: bool, database_url: str | None, data_dir: Path | None) -> None:
    """Every key ever created, revoked ones included (never a secret)."""
    found: list[ApiKey] = _on_database(database_url, data_dir, list_keys)
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
@_database_option
@_data_dir_option
def keys_revoke(key: str, database_url: str | None, data_dir: Path | None) -> None:
    """Revoke KEY (its id, or the whole key): every engine process refuses it at once."""
    prefix = public_id(key)
    if prefix is None:
        raise click.BadParameter("give a key id (12 hex digits) or a whole key", param_hint="KEY")

    async def work(connection: asyncpg.Connection) -> ApiKey | None:
        return await revoke_key(connection, prefix)

    revoked: ApiKey | None = _on_database(database_url, data_dir, work)
    if revoked is None:
        raise click.ClickException(f"no key has the id {prefix}")
    assert revoked.revoked_at is not None
    click.echo(f"revoked {_describe(revoked)} (since {revoked.revoked_at.isoformat()})")


# --- simulate and demo: a fleet driven through the HTTP API -----------------------------------


class _TimestampType(click.ParamType[datetime]):
    name = "timestamp"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> datetime:
        from energy_ingest.wire import parse_timestamp

        if isinstance(value, datetime):
            return value
        try:
            return parse_timestamp(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


_SHARE = click.FloatRange(0.0, 1.0)


def _fleet_options(defaults: dict[str, Any], envvar_prefix: str) -> Callable[[F], F]:
    """Options shared by simulate and demo: the fleet, the mess, the load."""

    def option(name: str, **kwargs: Any) -> Callable[[F], F]:
        key = name.lstrip("-").replace("-", "_")
        kwargs.setdefault("default", defaults.get(key))
        kwargs.setdefault("envvar", f"{envvar_prefix}{key.upper()}")
        return click.option(name, show_default=True, show_envvar=True, **kwargs)

    decorators = [
        option("--vehicles", type=click.IntRange(1, 100_000), help="Vehicles (one meter each)."),
        option(
            "--faulty-share",
            type=_SHARE,
            help="Share of chargers made faulty (efficiency 70–82 %; healthy 88–95 %).",
        ),
        option(
            "--change-share",
            type=_SHARE,
            help="Share of vehicles moved to a spare charger (of the same health) mid-run.",
        ),
        option("--dc-fast-share", type=_SHARE, help="Share of DC fast chargers (50–150 kW)."),
        option("--jitter-rate", type=_SHARE, help="Share of readings whose clock is off."),
        option(
            "--max-jitter",
            type=click.IntRange(0, 20),
            help="Largest clock error, in whole seconds either way.",
        ),
        option("--retry-rate", type=_SHARE, help="Share of readings sent twice (a retry)."),
        option("--late-rate", type=_SHARE, help="Share of readings delivered 2–30 min late."),
        option(
            "--silence-rate",
            type=click.FloatRange(0.0, 1.0, max_open=True),
            help="Share of device-minutes lost to devices going silent (5–60 min at a time).",
        ),
        option("--seed", type=int, help="Same seed, same fleet and readings."),
        option(
            "--prefix",
            help="Device ids are PREFIX-v0001, PREFIX-m0001…: another prefix, another fleet.",
        ),
        option(
            "--batch-size",
            type=click.IntRange(1, 10_000),
            help="Back-fill: readings per batch request.",
        ),
        option(
            "--concurrency",
            type=click.IntRange(1, 512),
            help="Requests in flight (default 4 for back-fill, 16 in real time).",
        ),
        option(
            "--threshold",
            type=click.FloatRange(0.0, 1.0, min_open=True),
            envvar=[f"{envvar_prefix}THRESHOLD", "EIE_EFFICIENCY_THRESHOLD"],
            help="The engine's efficiency threshold, to compute the statuses expected.",
        ),
        option("--timeout", type=click.FloatRange(min=1.0), help="HTTP timeout in seconds."),
        option("--worst", type=click.IntRange(0, 1000), help="Rows of the worst-vehicles table."),
    ]

    def apply(command: F) -> F:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


def _run_options(
    options: dict[str, Any], *, duration: timedelta, realtime: bool, url: str
) -> RunOptions:
    from energy_ingest.simulator.command import RunOptions
    from energy_ingest.simulator.fleet import FleetSpec
    from energy_ingest.simulator.mess import MessRates
    from energy_ingest.wire import is_device_id

    prefix = options["prefix"]
    if len(prefix) > 40 or not is_device_id(prefix):
        raise click.BadParameter("1–40 characters of A-Z a-z 0-9 . _ : -", param_hint="--prefix")
    return RunOptions(
        duration=duration,
        realtime=realtime,
        url=url.rstrip("/"),
        spec=FleetSpec(
            vehicles=options["vehicles"],
            faulty_share=options["faulty_share"],
            change_share=options["change_share"],
            dc_fast_share=options["dc_fast_share"],
            prefix=prefix,
            seed=options["seed"],
        ),
        mess=MessRates(
            jitter=options["jitter_rate"],
            max_jitter_seconds=options["max_jitter"],
            retry=options["retry_rate"],
            late=options["late_rate"],
            silence=options["silence_rate"],
        ),
        speedup=options.get("speedup", 1.0),
        start=options.get("start"),
        batch_size=options["batch_size"],
        concurrency=options["concurrency"],
        threshold=options["threshold"],
        timeout_seconds=options["timeout"],
        worst=options["worst"],
        api_key=options.get("api_key"),
    )


_FLEET_DEFAULTS: dict[str, Any] = {
    "vehicles": 100,
    "faulty_share": 0.02,
    "change_share": 0.05,
    "dc_fast_share": 0.2,
    "jitter_rate": 0.5,
    "max_jitter": 3,
    "retry_rate": 0.01,
    "late_rate": 0.01,
    "silence_rate": 0.0005,
    "seed": 1,
    "prefix": "sim",
    "batch_size": 5_000,
    "concurrency": None,
    "threshold": 0.85,
    "timeout": 60.0,
    "worst": 10,
}


@main.command()
@click.option(
    "--url",
    envvar="EIE_SIM_URL",
    default="http://127.0.0.1:8000",
    show_default=True,
    show_envvar=True,
    help="Base URL of the running engine; only its HTTP API is used.",
)
@click.option(
    "--api-key",
    envvar="EIE_API_KEY",
    show_envvar=True,
    help="An admin key of the engine (the simulator assigns meters as well as sending "
    "readings). Not needed when the engine runs with --no-auth.",
)
@click.option(
    "--backfill",
    "backfill_span",
    envvar="EIE_SIM_BACKFILL",
    type=_DURATION,
    show_envvar=True,
    help="Back-fill this span (e.g. 24h, at most 29 days) ending now, as fast as the engine "
    "accepts, through the batch endpoints.",
)
@click.option(
    "--realtime",
    is_flag=True,
    envvar="EIE_SIM_REALTIME",
    show_envvar=True,
    help="Every device posts one reading a minute to the single-reading endpoints, for "
    "--duration of simulated time.",
)
@click.option(
    "--duration",
    envvar="EIE_SIM_DURATION",
    type=_DURATION,
    default="1h",
    show_default=True,
    show_envvar=True,
    help="Real time: simulated span of the run.",
)
@click.option(
    "--speedup",
    envvar="EIE_SIM_SPEEDUP",
    type=click.FloatRange(min=1.0),
    default=1.0,
    show_default=True,
    show_envvar=True,
    help="Real time: simulated minutes per real minute. The engine refuses timestamps more "
    "than 5 min ahead, so the simulated clock starts DURATION × (1 − 1/SPEEDUP) in the past and "
    "catches up with the real clock exactly as the run ends: no reading is ever in the future.",
)
@click.option(
    "--start",
    envvar="EIE_SIM_START",
    type=_TimestampType(),
    show_envvar=True,
    help="Back-fill: first simulated minute (ISO 8601 with an offset); default: the span "
    "before now. With --seed it makes a run repeatable to the byte.",
)
@_fleet_options(_FLEET_DEFAULTS, "EIE_SIM_")
def simulate(
    url: str,
    api_key: str | None,
    backfill_span: timedelta | None,
    realtime: bool,
    duration: timedelta,
    **options: Any,
) -> None:
    """Simulate a fleet against a running engine, over its HTTP API only.

    N vehicles, each fed by its own meter (assigned through the API; a few move to a spare
    charger mid-run), charge AC or DC with real physics; the devices misbehave as real ones do
    (clock jitter, retries, late and lost readings). At the end: what the engine stored, and
    whether its analytics flag exactly the chargers the simulator made faulty.

    \b
    energy-ingest simulate --backfill 24h --vehicles 1000
    energy-ingest simulate --realtime --duration 2h --speedup 60
    """
    from energy_ingest.simulator.command import simulate as run_simulation

    if (backfill_span is None) == (not realtime):
        raise click.UsageError("choose one mode: --backfill SPAN or --realtime")
    if realtime and options.get("start") is not None:
        raise click.UsageError("--start is for --backfill; real time places its clock itself")
    run = _run_options(
        {**options, "api_key": api_key},
        duration=duration if realtime else backfill_span or duration,
        realtime=realtime,
        url=url,
    )
    sys.exit(run_simulation(run))


_DEMO_DEFAULTS: dict[str, Any] = {
    **_FLEET_DEFAULTS,
    "vehicles": 1_000,
    "faulty_share": 0.01,
    "change_share": 0.02,
    # Fewer silent devices than simulate's default: each one hides a vehicle from judgement,
    # and the demo's table should be about chargers, not gaps.
    "silence_rate": 0.0002,
    "seed": 7,
    "prefix": "demo",
    "worst": 15,
}


@main.command()
@click.option(
    "--backfill",
    "backfill_span",
    envvar="EIE_DEMO_BACKFILL",
    type=_DURATION,
    default="24h",
    show_default=True,
    show_envvar=True,
    help="Span of fleet history to simulate, ending now.",
)
@click.option(
    "--host", envvar="EIE_DEMO_HOST", default="127.0.0.1", show_default=True, show_envvar=True
)
@click.option(
    "--port",
    envvar="EIE_DEMO_PORT",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    show_envvar=True,
    help="Port of the engine; a free one is picked if it is taken.",
)
@click.option(
    "--data-dir",
    envvar="EIE_DEMO_DATA_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    show_envvar=True,
    help="Demo folder (embedded database, engine log), wiped at every start and removed at a "
    "clean stop. Default: energy-ingest-demo-<uid> in the system's temporary folder.",
)
@_fleet_options(_DEMO_DEFAULTS, "EIE_DEMO_")
def demo(
    backfill_span: timedelta, host: str, port: int, data_dir: Path | None, **options: Any
) -> None:
    """See the whole product in one go: engine, a day of a 1,000-vehicle fleet, the verdicts.

    Starts the engine on a fresh embedded PostgreSQL, back-fills 24 h of a fleet in which a
    few chargers are faulty, prints the vehicles with the lowest efficiency with the engine's
    status beside the truth, the detection result and URLs to try, then keeps the engine up
    until Ctrl-C (or SIGTERM), which stops it and its database cleanly.
    """
    from energy_ingest.simulator.demo import DemoOptions, default_folder
    from energy_ingest.simulator.demo import demo as run_demo

    run = _run_options(options, duration=backfill_span, realtime=False, url="")
    sys.exit(
        run_demo(DemoOptions(folder=data_dir or default_folder(), host=host, port=port, run=run))
    )
