"""Key format, scopes, and the settings that refuse an open engine beyond loopback."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from energy_ingest.auth.guard import OPEN, Principal
from energy_ingest.auth.keys import (
    Scope,
    generate_key,
    hash_secret,
    parse_scopes,
    public_id,
    split_token,
)
from energy_ingest.config import Settings, is_loopback
from energy_ingest.readings import DeviceKind


def test_a_new_key_splits_back_into_its_id_and_secret() -> None:
    new = generate_key()
    split = split_token(new.token)
    assert split is not None
    prefix, secret = split
    assert prefix == new.prefix
    assert len(prefix) == 12
    assert hash_secret(secret) == new.secret_hash
    assert len(secret) >= 43  # 256 bits
    assert public_id(new.token) == public_id(new.prefix) == new.prefix
    assert generate_key().token != new.token


@pytest.mark.parametrize(
    "token",
    [
        "",
        "eie_",
        "eie_0123456789ab",
        "eie_0123456789ab_",
        "eie_0123456789AB_secret",  # the id is lower-case hex
        "eie_0123456789a_secret",
        "xyz_0123456789ab_secret",
        "eie_0123456789abXsecret",
        "eie_0123456789ab_" + "s" * 129,
    ],
)
def test_malformed_tokens_are_refused_before_any_lookup(token: str) -> None:
    assert split_token(token) is None


def test_scopes_are_parsed_from_repeats_and_commas() -> None:
    assert parse_scopes(["ingest", "read,ADMIN"]) == frozenset(Scope)
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        parse_scopes(["root"])
    with pytest.raises(ValueError, match="at least one scope"):
        parse_scopes([" , "])


def test_admin_covers_every_scope_and_devices_bind_by_kind() -> None:
    admin = Principal(key_id="a", scopes=frozenset({Scope.ADMIN}))
    assert all(admin.has(scope) for scope in Scope)
    reader = Principal(key_id="r", scopes=frozenset({Scope.READ}))
    assert reader.has(Scope.READ)
    assert not reader.has(Scope.INGEST)
    meter = Principal(
        key_id="m", scopes=frozenset({Scope.INGEST}), device_id="M1", device_kind=DeviceKind.METER
    )
    assert meter.may_access(DeviceKind.METER, "M1")
    assert not meter.may_access(DeviceKind.VEHICLE, "M1")
    assert not meter.may_access(DeviceKind.METER, "M2")
    either = Principal(key_id="e", scopes=frozenset({Scope.INGEST}), device_id="X")
    assert either.may_access(DeviceKind.METER, "X")
    assert either.may_access(DeviceKind.VEHICLE, "X")
    assert OPEN.may_access(DeviceKind.VEHICLE, "anything")
    assert OPEN.has(Scope.ADMIN)


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.53", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("10.1.2.3", False),
        ("engine.internal", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_settings_refuse_authentication_off_beyond_loopback() -> None:
    assert not Settings(auth_enabled=False, host="127.0.0.1").auth_enabled
    with pytest.raises(ValidationError, match="not a loopback address"):
        Settings(auth_enabled=False, host="0.0.0.0")
    assert Settings(host="0.0.0.0").auth_enabled  # on by default


def test_ipv6_clients_share_one_lookup_budget_per_64() -> None:
    from energy_ingest.auth.guard import _budget_holder

    assert _budget_holder("2001:db8:1:2::1") == _budget_holder("2001:db8:1:2:ffff::9")
    assert _budget_holder("2001:db8:1:3::1") != _budget_holder("2001:db8:1:2::1")
    assert _budget_holder("203.0.113.7") == "203.0.113.7"
    assert _budget_holder(None) == ""
