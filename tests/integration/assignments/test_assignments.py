"""Vehicle ↔ meter assignments over HTTP, and the exclusion constraints that guard them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest

from tests.factories import iso, minute

_INSERT_ASSIGNMENT = """
INSERT INTO vehicle_meter_assignments (vehicle_id, meter_id, during)
VALUES ($1, $2, tstzrange($3, $4, '[)'))
"""


async def assign(
    client: httpx.AsyncClient, vehicle_id: str, meter_id: str, start: datetime | None = None
) -> httpx.Response:
    body: dict[str, Any] = {"meterId": meter_id}
    if start is not None:
        body["from"] = iso(start)
    return await client.put(f"/v1/vehicles/{vehicle_id}/meter", json=body)


async def unassign(
    client: httpx.AsyncClient, vehicle_id: str, at: datetime | None = None
) -> httpx.Response:
    params = {"at": iso(at)} if at is not None else {}
    return await client.delete(f"/v1/vehicles/{vehicle_id}/meter", params=params)


async def given_assignment(
    client: httpx.AsyncClient,
    vehicle_id: str,
    meter_id: str,
    start: datetime,
    end: datetime | None = None,
) -> dict[str, Any]:
    """Arrange: the vehicle is fed by the meter from `start` (until `end`, when given)."""
    response = await assign(client, vehicle_id, meter_id, start)
    assert response.status_code == 201, response.text
    if end is not None:
        response = await unassign(client, vehicle_id, end)
        assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def assignments_of(client: httpx.AsyncClient, vehicle_id: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/vehicles/{vehicle_id}/assignments")
    assert response.status_code == 200
    listed: list[dict[str, Any]] = response.json()
    return listed


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)


Ago = Callable[[int], datetime]


@pytest.fixture
def ago() -> Ago:
    """Whole minutes before one fixed minute, so a test never straddles a minute boundary."""
    base = minute(0)
    return lambda minutes: minute(-minutes, base=base)


# --- PUT: start an assignment -------------------------------------------------------------------


async def test_assigning_a_meter_starts_an_open_assignment(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    start = ago(120)

    response = await assign(client, "ev-1", "meter-1", start)

    assert response.status_code == 201
    body = response.json()
    assert isinstance(body["id"], int)
    assert body == {
        "id": body["id"],
        "vehicleId": "ev-1",
        "meterId": "meter-1",
        "from": iso(start),
        "to": None,
    }
    assert await assignments_of(client, "ev-1") == [body]


async def test_assigning_without_from_starts_now(client: httpx.AsyncClient) -> None:
    before = datetime.now(UTC)
    response = await assign(client, "ev-1", "meter-1")
    after = datetime.now(UTC)

    assert response.status_code == 201
    assert before <= parse(response.json()["from"]) <= after
    assert response.json()["to"] is None


async def test_from_with_an_offset_is_answered_in_utc(client: httpx.AsyncClient, ago: Ago) -> None:
    start = ago(120)
    with_offset = start.astimezone(timezone(timedelta(hours=2))).isoformat()

    response = await client.put(
        "/v1/vehicles/ev-1/meter", json={"meterId": "m", "from": with_offset}
    )

    assert response.status_code == 201
    assert response.json()["from"] == iso(start)


async def test_assigning_the_current_meter_again_is_200_and_changes_nothing(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    first = await given_assignment(client, "ev-1", "meter-1", ago(120))

    again = await assign(client, "ev-1", "meter-1", ago(60))

    assert again.status_code == 200
    assert again.json() == first
    assert await assignments_of(client, "ev-1") == [first]


async def test_assigning_another_meter_ends_the_current_one_at_from(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    first = await given_assignment(client, "ev-1", "meter-a", ago(120))
    switch = ago(60)

    response = await assign(client, "ev-1", "meter-b", switch)

    assert response.status_code == 201
    second = response.json()
    assert second["meterId"] == "meter-b"
    assert second["from"] == iso(switch)
    assert second["to"] is None
    assert await assignments_of(client, "ev-1") == [{**first, "to": iso(switch)}, second]


async def test_starting_at_or_before_the_current_assignment_is_409(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    current = await given_assignment(client, "ev-1", "meter-a", ago(60))

    same_start = await assign(client, "ev-1", "meter-b", ago(60))
    earlier = await assign(client, "ev-1", "meter-b", ago(90))

    for response in (same_start, earlier):
        assert response.status_code == 409
        assert response.json()["error"] == "conflict"
        assert "meter-a" in response.json()["message"]
    assert await assignments_of(client, "ev-1") == [current]


async def test_assigning_a_meter_that_feeds_another_vehicle_is_409_and_keeps_the_current_one(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    await given_assignment(client, "ev-other", "meter-shared", ago(180))
    own = await given_assignment(client, "ev-1", "meter-own", ago(120))

    response = await assign(client, "ev-1", "meter-shared", ago(60))

    assert response.status_code == 409
    message = response.json()["message"]
    assert "meter meter-shared already feeds vehicle ev-other" in message
    assert "until further notice" in message
    # The whole change was one transaction: ending the current assignment was rolled back.
    assert await assignments_of(client, "ev-1") == [own]


async def test_a_meter_that_fed_another_vehicle_during_the_period_is_409_naming_when(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    await given_assignment(client, "ev-other", "meter-shared", ago(180), ago(60))

    response = await assign(client, "ev-1", "meter-shared", ago(90))

    assert response.status_code == 409
    message = response.json()["message"]
    assert "already feeds vehicle ev-other" in message
    assert f"from {iso(ago(180))} until {iso(ago(60))}" in message
    assert await assignments_of(client, "ev-1") == []


async def test_overlapping_an_ended_assignment_of_the_vehicle_is_409(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    await given_assignment(client, "ev-1", "meter-a", ago(180), ago(60))

    response = await assign(client, "ev-1", "meter-b", ago(90))

    assert response.status_code == 409
    message = response.json()["message"]
    assert f"vehicle ev-1 already has meter meter-a assigned from {iso(ago(180))}" in message
    assert [row["meterId"] for row in await assignments_of(client, "ev-1")] == ["meter-a"]


async def test_a_released_meter_can_feed_another_vehicle_from_the_release_time(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    release = ago(60)
    await given_assignment(client, "ev-1", "meter-1", ago(120), release)

    response = await assign(client, "ev-2", "meter-1", release)

    assert response.status_code == 201
    assert response.json()["from"] == iso(release)


async def test_concurrent_assignments_of_one_meter_to_two_vehicles_let_exactly_one_win(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    start = ago(30)

    responses = await asyncio.gather(
        assign(client, "ev-1", "meter-1", start), assign(client, "ev-2", "meter-1", start)
    )

    assert sorted(response.status_code for response in responses) == [201, 409]
    stored = await assignments_of(client, "ev-1") + await assignments_of(client, "ev-2")
    assert len(stored) == 1


async def test_concurrent_changes_of_one_vehicle_never_leave_two_current_assignments(
    client: httpx.AsyncClient,
    ago: Ago,
) -> None:
    start = ago(30)

    responses = await asyncio.gather(
        assign(client, "ev-1", "meter-a", start), assign(client, "ev-1", "meter-b", start)
    )

    assert sorted(response.status_code for response in responses) == [201, 409]
    stored = await assignments_of(client, "ev-1")
    assert len(stored) == 1
    assert stored[0]["to"] is None


# --- DELETE: end the current assignment ---------------------------------------------------------


async def test_ending_the_assignment_sets_to_at_the_given_time(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    started = await given_assignment(client, "ev-1", "meter-1", ago(120))
    end = ago(30)

    response = await unassign(client, "ev-1", end)

    assert response.status_code == 200
    assert response.json() == {**started, "to": iso(end)}
    assert await assignments_of(client, "ev-1") == [{**started, "to": iso(end)}]


async def test_ending_without_at_ends_now(client: httpx.AsyncClient, ago: Ago) -> None:
    await given_assignment(client, "ev-1", "meter-1", ago(120))

    before = datetime.now(UTC)
    response = await unassign(client, "ev-1")
    after = datetime.now(UTC)

    assert response.status_code == 200
    assert before <= parse(response.json()["to"]) <= after


async def test_ending_when_nothing_is_assigned_is_404(client: httpx.AsyncClient) -> None:
    response = await unassign(client, "ev-never")

    assert response.status_code == 404
    assert response.json() == {
        "error": "not_found",
        "message": "vehicle ev-never has no current meter assignment",
    }


async def test_ending_an_already_ended_assignment_is_404(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await given_assignment(client, "ev-1", "meter-1", ago(120), ago(60))

    response = await unassign(client, "ev-1", ago(30))

    assert response.status_code == 404


async def test_ending_at_or_before_the_start_is_409(client: httpx.AsyncClient, ago: Ago) -> None:
    started = await given_assignment(client, "ev-1", "meter-1", ago(60))

    at_start = await unassign(client, "ev-1", ago(60))
    before_start = await unassign(client, "ev-1", ago(90))

    assert at_start.status_code == 409
    assert before_start.status_code == 409
    assert "cannot end before it starts" in at_start.json()["message"]
    assert await assignments_of(client, "ev-1") == [started]


async def test_a_malformed_at_is_422_naming_it(client: httpx.AsyncClient, ago: Ago) -> None:
    await given_assignment(client, "ev-1", "meter-1", ago(60))

    response = await client.delete("/v1/vehicles/ev-1/meter", params={"at": "2026-02-09T13:30"})

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["at"]


# --- GET: list ----------------------------------------------------------------------------------


async def test_listing_is_ordered_by_from(
    client: httpx.AsyncClient, db: asyncpg.Connection, ago: Ago
) -> None:
    # Inserted newest first, so the order can only come from the query.
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-c", ago(60), None)
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-a", ago(180), ago(120))
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-b", ago(120), ago(60))

    listed = await assignments_of(client, "ev-1")

    assert [(row["meterId"], row["from"], row["to"]) for row in listed] == [
        ("meter-a", iso(ago(180)), iso(ago(120))),
        ("meter-b", iso(ago(120)), iso(ago(60))),
        ("meter-c", iso(ago(60)), None),
    ]


async def test_listing_a_vehicle_without_assignments_is_an_empty_array(
    client: httpx.AsyncClient,
) -> None:
    assert await assignments_of(client, "ev-never") == []


async def test_listing_only_shows_the_vehicles_own_assignments(
    client: httpx.AsyncClient, ago: Ago
) -> None:
    await given_assignment(client, "ev-1", "meter-1", ago(60))
    await given_assignment(client, "ev-2", "meter-2", ago(60))

    assert [row["meterId"] for row in await assignments_of(client, "ev-1")] == ["meter-1"]


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        pytest.param({"meterId": "no spaces allowed"}, "meterId", "pattern", id="bad-meter-id"),
        pytest.param({"meterId": 42}, "meterId", "type", id="meter-id-not-a-string"),
        pytest.param({}, "meterId", "required", id="missing-meter-id"),
        pytest.param({"meterId": "m", "meter": "x"}, "meter", "known_field", id="unknown-field"),
        pytest.param(
            {"meterId": "m", "from": "2026-02-09T13:30:00"}, "from", "format", id="naive-from"
        ),
        pytest.param({"meterId": "m", "from": "yesterday"}, "from", "format", id="garbage-from"),
    ],
)
async def test_an_invalid_body_is_422_naming_the_field(
    client: httpx.AsyncClient, body: dict[str, Any], field: str, rule: str
) -> None:
    response = await client.put("/v1/vehicles/ev-1/meter", json=body)

    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "validation_failed"
    assert [(error["field"], error["rule"]) for error in answer["errors"]] == [(field, rule)]
    assert await assignments_of(client, "ev-1") == []


async def test_a_body_that_is_not_json_is_400(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/vehicles/ev-1/meter", content=b"meter-1", headers={"content-type": "application/json"}
    )

    assert response.status_code == 400


@pytest.mark.parametrize("method", ["PUT", "DELETE", "GET"])
async def test_a_malformed_vehicle_id_in_the_path_is_422(
    client: httpx.AsyncClient, method: str
) -> None:
    path = "/v1/vehicles/bad%20id/assignments" if method == "GET" else "/v1/vehicles/bad%20id/meter"
    body = {"meterId": "meter-1"} if method == "PUT" else None

    response = await client.request(method, path, json=body)

    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["vehicleId"]


# --- the database itself enforces the rule ------------------------------------------------------


async def test_the_database_refuses_overlapping_assignments_of_one_vehicle(
    db: asyncpg.Connection,
    ago: Ago,
) -> None:
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-a", ago(120), None)

    with pytest.raises(asyncpg.ExclusionViolationError) as refused:
        await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-b", ago(60), ago(30))

    assert refused.value.constraint_name == "vehicle_has_one_meter_at_a_time"


async def test_the_database_refuses_a_meter_feeding_two_vehicles_at_once(
    db: asyncpg.Connection,
    ago: Ago,
) -> None:
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-1", ago(120), ago(60))

    with pytest.raises(asyncpg.ExclusionViolationError) as refused:
        await db.execute(_INSERT_ASSIGNMENT, "ev-2", "meter-1", ago(90), None)

    assert refused.value.constraint_name == "meter_feeds_one_vehicle_at_a_time"


async def test_the_database_accepts_back_to_back_assignments(
    db: asyncpg.Connection, ago: Ago
) -> None:
    # [from, to) ranges: one may start exactly when the previous one ends.
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-1", ago(120), ago(60))
    await db.execute(_INSERT_ASSIGNMENT, "ev-1", "meter-2", ago(60), None)
    await db.execute(_INSERT_ASSIGNMENT, "ev-2", "meter-1", ago(60), None)

    count = await db.fetchval("SELECT count(*) FROM vehicle_meter_assignments")
    assert count == 3
