"""Where every table of the schema goes on a Citus cluster, declared once.

The engine runs on one PostgreSQL; this is the plan for many (docs/scale-out.md). Every table
the migrations create is named here with its place: distributed by its device column (and
with which tables it is co-located), a reference table copied to every node, or a table that
stays on the coordinator alone. `tests/migration/test_citus_ready.py` reads the migrated
schema's catalog and fails on a table missing from this mapping, on a table named here that no
longer exists, and on anything Citus would refuse for the place a table is given, so a new
migration cannot add a table without deciding where it goes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Distributed:
    """Hash-distributed by `column`; `colocate_with` names the first table of its co-location
    group (None: this table starts a group of its own)."""

    column: str
    colocate_with: str | None = None


@dataclass(frozen=True, slots=True)
class Reference:
    """Small, read by joins everywhere: one copy on every node."""


@dataclass(frozen=True, slots=True)
class Coordinator:
    """Stays a plain table on the coordinator, never added to Citus's metadata; `why` says why."""

    why: str


Placement = Distributed | Reference | Coordinator

TABLES: Mapping[str, Placement] = {
    # Dictionaries, assignments: joined with every device table by the analytics; rows change
    # only when a device is first seen or an assignment changes.
    "meters": Reference(),
    "vehicles": Reference(),
    # Its two exclusion constraints (a vehicle one meter at a time, a meter one vehicle at a
    # time) cannot both hold the distribution column of any one distribution: only a table
    # whole on every node keeps both.
    "vehicle_meter_assignments": Reference(),
    # Meters: history, rollups, the rollup inbox, one group by the integer key.
    "meter_readings": Distributed("meter_key"),
    "meter_rollups": Distributed("meter_key", colocate_with="meter_readings"),
    "meter_rollup_days": Distributed("meter_key", colocate_with="meter_readings"),
    "meter_rollup_inbox": Distributed("meter_key", colocate_with="meter_readings"),
    # Vehicles: the same, a group of their own (nothing joins a meter key to a vehicle key).
    "vehicle_readings": Distributed("vehicle_key"),
    "vehicle_rollups": Distributed("vehicle_key", colocate_with="vehicle_readings"),
    "vehicle_rollup_days": Distributed("vehicle_key", colocate_with="vehicle_readings"),
    "vehicle_rollup_inbox": Distributed("vehicle_key", colocate_with="vehicle_readings"),
    # The vehicles' charging split and data quality by hour, and the vehicle-days the
    # folder must compute again: by vehicle, with the vehicle's history. Computing an hour
    # reads the feeding meter's readings too, a join across the two groups that Citus runs
    # by repartitioning (the folder's work, not the writer's).
    "vehicle_energy_hours": Distributed("vehicle_key", colocate_with="vehicle_readings"),
    "vehicle_energy_pending": Distributed("vehicle_key", colocate_with="vehicle_readings"),
    # Live state is looked up by the device's text id; both live tables in one group, so the
    # fleet's same-id correlation (vehicle id = meter id) is a co-located join.
    "meter_live": Distributed("meter_id"),
    "vehicle_live": Distributed("vehicle_id", colocate_with="meter_live"),
    # Chargers (OCPP): every statement names one charge point; a group of their own (a charge
    # point's id is not a meter's: its meters are `{chargePointId}:{connectorId}`).
    "charger_connectors": Distributed("charge_point_id"),
    "charger_transactions": Distributed("charge_point_id", colocate_with="charger_connectors"),
    "api_keys": Coordinator(
        "its trigger notifies the engines, which LISTEN on the coordinator; a reference "
        "table's trigger would fire on the workers' copies (and Citus refuses triggers on "
        "reference tables unless citus.enable_unsafe_triggers is on); nothing joins it"
    ),
    "schema_migrations": Coordinator("the migration runner's own bookkeeping; nothing joins it"),
}


def citus_statements(tables: Mapping[str, Placement] = TABLES) -> list[str]:
    """The calls that turn the migrated schema into a Citus one, in the order they must run:
    reference tables first (a distributed table may reference them), then each co-location
    group's first table before the tables co-located with it."""
    statements = [
        f"SELECT create_reference_table('{name}');"
        for name, placement in tables.items()
        if isinstance(placement, Reference)
    ]
    for name, placement in tables.items():
        if isinstance(placement, Distributed) and placement.colocate_with is None:
            statements.append(
                f"SELECT create_distributed_table('{name}', '{placement.column}',"
                " colocate_with => 'none');"
            )
            for member, other in tables.items():
                if isinstance(other, Distributed) and other.colocate_with == name:
                    statements.append(
                        f"SELECT create_distributed_table('{member}', '{other.column}',"
                        f" colocate_with => '{name}');"
                    )
    return statements
