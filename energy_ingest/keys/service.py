"""Key management shared by the CLI and the HTTP API: create, list, revoke, first admin key."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime

from energy_ingest.auth import repository
from energy_ingest.auth.keys import ApiKey, Scope, generate_key, ordered
from energy_ingest.db.pool import AnyConnection
from energy_ingest.readings import DeviceKind
from energy_ingest.wire import DEVICE_ID_RULE, is_device_id

MAX_NAME_LENGTH = 200


class InvalidKeyRequest(ValueError):
    """A key that must not be created (the message says which rule); nothing was stored."""

    def __init__(self, field: str, message: str, rule: str = "combination") -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


def check_key_request(
    scopes: Iterable[Scope],
    device_id: str | None,
    device_kind: DeviceKind | None,
    name: str,
    expires_at: datetime | None = None,
) -> None:
    """Refuse a combination the table's constraints would refuse, with a clearer message."""
    if not set(scopes):
        raise InvalidKeyRequest("scopes", "give at least one scope: ingest, read or admin")
    if device_id is not None and not is_device_id(device_id):
        raise InvalidKeyRequest("deviceId", DEVICE_ID_RULE, rule="pattern")
    if device_kind is not None and device_id is None:
        raise InvalidKeyRequest("deviceKind", "a device kind needs a device id")
    if device_id is not None and Scope.ADMIN in set(scopes):
        raise InvalidKeyRequest(
            "scopes", "an admin key cannot be bound to a device (administration is fleet-wide)"
        )
    if device_id is not None and device_kind is None:
        # Without a kind one key would write the device as a meter and as a vehicle: both
        # sides of its efficiency, the verdict and the bill.
        raise InvalidKeyRequest(
            "deviceKind",
            "a device-bound key must name its kind: meter or vehicle",
            rule="required",
        )
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidKeyRequest("name", f"must be at most {MAX_NAME_LENGTH} characters")
    if not name.isprintable():
        # A NUL cannot be stored at all; control and bidi characters would rewrite listings.
        raise InvalidKeyRequest(
            "name",
            "must be printable: no control, line-separator or bidi characters",
            rule="printable",
        )
    if expires_at is not None and expires_at <= datetime.now(UTC):
        raise InvalidKeyRequest("expiresAt", "must lie in the future", rule="future")


async def create_key(
    connection: AnyConnection,
    scopes: Iterable[Scope],
    *,
    device_id: str | None = None,
    device_kind: DeviceKind | None = None,
    name: str = "",
    expires_at: datetime | None = None,
) -> tuple[ApiKey, str]:
    """Store a new key; return its record and the token, which is never shown again."""
    scopes = frozenset(scopes)
    check_key_request(scopes, device_id, device_kind, name, expires_at)
    new = generate_key()
    try:
        key = await repository.insert_key(
            connection,
            prefix=new.prefix,
            secret_hash=new.secret_hash,
            name=name,
            scopes=ordered(scopes),
            device_id=device_id,
            device_kind=device_kind.value if device_kind else None,
            expires_at=expires_at,
        )
    except repository.ExpiryNotAfterCreation:
        raise InvalidKeyRequest("expiresAt", "must lie in the future", rule="future") from None
    return key, new.token


async def create_first_admin_key(
    connection: AnyConnection, *, before_minting: Callable[[], None] | None = None
) -> str | None:
    """The token of a new admin key if no key was ever created; None otherwise.

    Several processes may start at once (workers, replicas): the advisory lock lets exactly one
    of them mint the key. `before_minting` runs only when a key is about to be minted; if it
    raises, nothing is.
    """
    async with connection.transaction():
        await repository.lock_keys(connection)
        if await repository.count_keys(connection):
            return None
        if before_minting is not None:
            before_minting()
        _, token = await create_key(connection, {Scope.ADMIN}, name="first admin key")
        return token


async def list_keys(connection: AnyConnection) -> list[ApiKey]:
    return await repository.list_keys(connection)


async def revoke_key(connection: AnyConnection, prefix: str) -> ApiKey | None:
    """Revoke a key by its id; None when there is no such key. Revoking twice is harmless."""
    return await repository.revoke_key(connection, prefix)
