"""API keys: their format, their scopes, how a secret is hashed, and the record kept of each."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from energy_ingest.readings import DeviceKind

KEY_PREFIX = "eie_"
_PREFIX_BYTES = 6  # 12 hex characters: the key's public id
_SECRET_BYTES = 32  # 256 bits: no guessing, so a fast hash is enough
_PREFIX_LENGTH = 2 * _PREFIX_BYTES
_HEX = frozenset("0123456789abcdef")


class Scope(StrEnum):
    """What a key may do. `admin` covers the other two as well."""

    INGEST = "ingest"
    READ = "read"
    ADMIN = "admin"


def hash_secret(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


@dataclass(frozen=True, slots=True)
class NewKey:
    """A key as handed out once: the whole token, and what is stored of it."""

    prefix: str
    token: str
    secret_hash: bytes


def generate_key() -> NewKey:
    """A fresh key: `eie_<12 hex>_<43 url-safe characters>`."""
    prefix = secrets.token_hex(_PREFIX_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return NewKey(
        prefix=prefix, token=f"{KEY_PREFIX}{prefix}_{secret}", secret_hash=hash_secret(secret)
    )


def split_token(token: str) -> tuple[str, str] | None:
    """(prefix, secret) of a well-formed token, None for anything else."""
    if not token.startswith(KEY_PREFIX):
        return None
    prefix = token[len(KEY_PREFIX) : len(KEY_PREFIX) + _PREFIX_LENGTH]
    rest = token[len(KEY_PREFIX) + _PREFIX_LENGTH :]
    if len(prefix) != _PREFIX_LENGTH or not _HEX.issuperset(prefix) or rest[:1] != "_":
        return None
    secret = rest[1:]
    if not secret or len(secret) > 128:
        return None
    return prefix, secret


def public_id(value: str) -> str | None:
    """The public id of a key given as its id or as the whole token; None if it is neither."""
    if len(value) == _PREFIX_LENGTH and _HEX.issuperset(value):
        return value
    split = split_token(value)
    return split[0] if split is not None else None


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from `ingest`, `read,admin`, …; raises ValueError naming an unknown one."""
    found: set[Scope] = set()
    for value in values:
        for part in value.split(","):
            name = part.strip().lower()
            if not name:
                continue
            try:
                found.add(Scope(name))
            except ValueError:
                known = ", ".join(scope.value for scope in Scope)
                raise ValueError(f"unknown scope {part.strip()!r}: use {known}") from None
    if not found:
        raise ValueError("give at least one scope: ingest, read or admin")
    return frozenset(found)


def ordered(scopes: Iterable[Scope]) -> list[str]:
    """Scopes in their documented order (ingest, read, admin), for storage and display."""
    chosen = set(scopes)
    return [scope.value for scope in Scope if scope in chosen]


@dataclass(frozen=True, slots=True)
class ApiKey:
    """What the engine knows of a key; never its secret."""

    prefix: str
    name: str
    scopes: frozenset[Scope]
    device_id: str | None
    device_kind: DeviceKind | None
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None = None

    @classmethod
    def from_row(cls, row: Any) -> ApiKey:
        return cls(
            prefix=row["prefix"],
            name=row["name"],
            scopes=frozenset(Scope(scope) for scope in row["scopes"]),
            device_id=row["device_id"],
            device_kind=DeviceKind(row["device_kind"]) if row["device_kind"] else None,
            created_at=row["created_at"],
            revoked_at=row["revoked_at"],
            expires_at=row["expires_at"],
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.prefix,
            "name": self.name,
            "scopes": ordered(self.scopes),
            "deviceId": self.device_id,
            "deviceKind": self.device_kind.value if self.device_kind else None,
            "createdAt": self.created_at,
            "revokedAt": self.revoked_at,
            "expiresAt": self.expires_at,
        }


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key record with its secret's hash, as the guard caches it."""

    key: ApiKey
    secret_hash: bytes

    def matches(self, secret: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))
