"""GET /v1/analytics/fleet/performance?from&to&status&sort&order&limit&cursor[&format=csv]."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse

from energy_ingest.analytics.fleet.schemas import FleetPerformance
from energy_ingest.analytics.fleet.service import (
    check_cursor,
    csv_lines,
    decode_cursor,
    fleet_page,
    next_cursor,
    parse_limit,
    parse_listing,
    resolve_fleet_window,
)
from energy_ingest.analytics.service import Window
from energy_ingest.errors import FieldProblem, Forbidden, ValidationFailed
from energy_ingest.web.dependencies import ReadConn, ReadKey, SettingsDep
from energy_ingest.web.http import json_response, parse_query_timestamps

router = APIRouter(prefix="/v1/analytics/fleet", tags=["analytics"])


def _wants_csv(request: Request, format_: str | None) -> bool:
    if format_ is not None:
        if format_ not in ("json", "csv"):
            raise ValidationFailed(
                [FieldProblem(field="format", rule="one_of", message="json or csv")]
            )
        return format_ == "csv"
    accept = request.headers.get("accept", "")
    return any(part.split(";")[0].strip().lower() == "text/csv" for part in accept.split(","))


@router.get(
    "/performance",
    response_model=FleetPerformance,
    responses={
        200: {"content": {"text/csv": {}}, "description": "JSON, or CSV of every row."},
        403: {"description": "A key bound to one device may not read the fleet."},
        422: {"description": "A malformed parameter, from ≥ to, or a window beyond 31 days."},
    },
)
async def fleet_performance_endpoint(
    request: Request,
    principal: ReadKey,
    connection: ReadConn,
    settings: SettingsDep,
    start: Annotated[
        str | None,
        Query(alias="from", description="ISO 8601; default: 24 whole hours before `to`"),
    ] = None,
    end: Annotated[
        str | None, Query(alias="to", description="ISO 8601; default: the next whole hour")
    ] = None,
    status: Annotated[
        str | None, Query(description="Comma list of ok, underperforming, implausible, ...")
    ] = None,
    sort: Annotated[
        str | None,
        Query(
            description="efficiency (default), energyLossKwh, energyConsumedAc, vehicleId, lastSeen"
        ),
    ] = None,
    order: Annotated[str | None, Query(description="asc (default) or desc")] = None,
    limit: Annotated[str | None, Query(description="1 to 1000, default 100")] = None,
    cursor: Annotated[str | None, Query(description="nextCursor of the previous page")] = None,
    format_: Annotated[
        str | None, Query(alias="format", description="json (default) or csv")
    ] = None,
    histogram: Annotated[
        bool,
        Query(description="Add the whole fleet's efficiency histogram to the summary."),
    ] = False,
) -> Response:
    if principal.device_id is not None:
        raise Forbidden(f"this key may only access {principal.bound_to()}")
    parsed = parse_query_timestamps(**{"from": start, "to": end})
    listing = parse_listing(status, sort, order)
    wants_csv = _wants_csv(request, format_)
    page_size = parse_limit(limit)
    now = datetime.now(UTC)
    given: Window | None = None
    if parsed["from"] is not None or parsed["to"] is not None:
        given = resolve_fleet_window(parsed["from"], parsed["to"], now, settings.max_analytics_span)
    position = None
    if cursor is not None:
        decoded = decode_cursor(cursor)
        check_cursor(decoded, listing, given)
        window, position = decoded.window, decoded.after
    else:
        window = given or resolve_fleet_window(None, None, now, settings.max_analytics_span)

    threshold = settings.efficiency_threshold
    if wants_csv:
        every = await fleet_page(
            connection,
            window,
            threshold,
            now,
            listing,
            None,
            position,
            rules=settings.split_rules,
            threshold_mode=settings.threshold_mode,
        )
        lines: Iterator[str] = csv_lines(window, every.rows)
        return StreamingResponse(
            lines,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="fleet-performance.csv"'},
        )
    page = await fleet_page(
        connection,
        window,
        threshold,
        now,
        listing,
        page_size,
        position,
        histogram=histogram,
        rules=settings.split_rules,
        threshold_mode=settings.threshold_mode,
    )
    return json_response(
        {
            "period": {"start": window.start, "end": window.end},
            "summary": page.summary,
            "vehicles": page.rows,
            "nextCursor": next_cursor(page, listing),
        }
    )
