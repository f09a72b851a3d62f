"""The benchmark's report: the machine, every figure with its ratio to its baseline, the targets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from bench.activity import ACTIVITIES, GROUPS
from bench.database import redact

# Plain-text log lines (the engine's text format, other programs' output): matched as text.
LOG_PROBLEM_MARKERS = ("Traceback", "Exception", " ERROR ", " WARNING ", " CRITICAL ")
# JSON log lines are parsed, never matched as text: the encoder decides the spacing (orjson
# writes `"logger":"…"`, json `"logger": "…"`), and a text marker for one misses the other.
LOG_PROBLEM_LEVELS = frozenset({"error", "warning", "critical"})
# One line per request (the engine's own, uvicorn's): counted, left out of the condensed log.
ACCESS_LOGGERS = ("energy_ingest.access", "uvicorn.access")
TEXT_ACCESS_MARKERS = {f" {logger}: ": logger for logger in ACCESS_LOGGERS}

# Targets are printed next to the figures (✓/✗); the bench never fails on them.
# The performance issue's targets: batch HTTP against the storage floor by number of workers,
# single readings against the naive path with one worker (and its p99), several workers' single
# figure steady between rounds (connections spread evenly, not by chance).
TARGET_FLOOR_SHARE = {1: 0.6, 2: 0.9}
TARGET_HTTP_READINGS_PER_SECOND = 20_000
TARGET_SINGLE_OVER_NAIVE = 3.0
TARGET_SINGLE_P99_MS = 20.0
TARGET_ROUND_SPREAD = 0.10
TARGET_ANALYTICS_GROWTH = 1.5
TARGET_BYTES_PER_READING = 100.0
TARGET_FLEET_24H_MS = 100.0
TARGET_FLEET_GROWTH = 1.2
TARGET_FLEET_7D_MS = 300.0
TARGET_SERIES_7D_MS = 20.0
TARGET_ROLLUP_SHARE = 0.85


def scrub(text: str, folders: dict[str, str]) -> str:
    """`text` with each folder of this machine replaced by a placeholder."""
    for folder, placeholder in sorted(folders.items(), key=lambda item: -len(item[0])):
        text = text.replace(folder, placeholder)
    return text


def redacted_command() -> str:
    """How the bench was started, without passwords or absolute paths."""
    cwd = str(Path.cwd())
    parts = []
    for part in sys.orig_argv:
        if "://" in part:
            part = redact(part)
        elif part.startswith(cwd + "/"):
            part = part[len(cwd) + 1 :]
        elif part.startswith("/"):
            part = Path(part).name
        parts.append(part)
    return " ".join(parts)


def _json_entry(line: str) -> dict[str, Any] | None:
    """The object of a JSON log line; None for any other line."""
    if not line.startswith("{"):
        return None
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def _access_logger(line: str, entry: dict[str, Any] | None) -> str | None:
    """Which access logger wrote `line`, if one did."""
    if entry is not None:
        logger = entry.get("logger")
        return logger if logger in ACCESS_LOGGERS else None
    for marker, logger in TEXT_ACCESS_MARKERS.items():
        if marker in line:
            return logger
    return None


def log_problems(text: str) -> list[str]:
    """Lines of a server log that speak of errors, warnings or exceptions."""
    problems = []
    for line in text.splitlines():
        entry = _json_entry(line)
        if entry is not None:
            level = str(entry.get("level", "")).lower()
            if level in LOG_PROBLEM_LEVELS or "exception" in entry or "Traceback" in line:
                problems.append(line)
        elif any(marker in line for marker in LOG_PROBLEM_MARKERS):
            problems.append(line)
    return problems


def condense_log(text: str) -> tuple[str, dict[str, int]]:
    """The log without its per-request access lines, and how many each server section had."""
    kept: list[str] = []
    access: dict[str, int] = {}
    section = "start"
    for line in text.splitlines():
        if line.startswith("===== ") and line.endswith(" ====="):
            section = line.strip("= ")
        logger = _access_logger(line, _json_entry(line))
        if logger is not None:
            key = f"{section}: {logger}"
            access[key] = access.get(key, 0) + 1
            continue
        kept.append(line)
    return "\n".join(kept) + "\n", access


STORAGE_SOURCES = (
    ("engine_storage", "written by the engine through HTTP, open day"),
    ("bulk_storage", "bulk-loaded in arrival order"),
    ("compacted_storage", "bulk-loaded, closed days after the engine's index compaction"),
)

# --- rendering ------------------------------------------------------------------------------


def _workers(count: int) -> str:
    return f"{count} worker{'s' if count > 1 else ''}"


def _mark(ok: bool) -> str:
    return "✓" if ok else "✗"


def _ratio(value: float, baseline: float) -> float:
    return value / baseline if baseline else 0.0


def _ms(seconds_ms: float) -> str:
    return f"{seconds_ms:.1f} ms"


def _rate(value: float) -> str:
    return f"{value:,.0f}"


def targets(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(target, what was measured, met) for every target whose figures this run has."""
    found: list[tuple[str, str, bool]] = []
    floor = report.get("floor")
    engines = report.get("engine", [])
    naive = report.get("naive")
    for engine in engines:
        batch = engine["batch"]
        single = engine["single"]
        workers = engine["workers"]
        label = _workers(workers)
        floor_share = TARGET_FLOOR_SHARE.get(workers)
        if floor and floor_share is not None:
            share = _ratio(batch["readings_per_second"], floor["readings_per_second"])
            found.append(
                (
                    f"batch ingest ≥ {floor_share:g}× the storage floor ({label})",
                    f"{share:.2f}×",
                    share >= floor_share,
                )
            )
        found.append(
            (
                f"≥ {TARGET_HTTP_READINGS_PER_SECOND:,} readings/s through HTTP, batch ({label})",
                _rate(batch["readings_per_second"]),
                batch["readings_per_second"] >= TARGET_HTTP_READINGS_PER_SECOND,
            )
        )
        if naive and workers == 1:
            ratio = _ratio(single["requests_per_second"], naive["single"]["requests_per_second"])
            found.append(
                (
                    f"single-reading requests/s ≥ {TARGET_SINGLE_OVER_NAIVE:g}× naive ({label})",
                    f"{ratio:.2f}×",
                    ratio >= TARGET_SINGLE_OVER_NAIVE,
                )
            )
            found.append(
                (
                    f"single-reading p99 ≤ {TARGET_SINGLE_P99_MS:g} ms ({label})",
                    _ms(single["p99_ms"]),
                    single["p99_ms"] <= TARGET_SINGLE_P99_MS,
                )
            )
        rates = [figures["single"] for figures in engine.get("rounds", [])]
        if workers > 1 and len(rates) > 1:
            spread = _ratio(max(rates) - min(rates), min(rates))
            found.append(
                (
                    f"single-reading requests/s within {TARGET_ROUND_SPREAD:.0%} between "
                    f"rounds ({label}, balanced)",
                    f"{spread:.1%} ({' / '.join(_rate(rate) for rate in rates)})",
                    spread <= TARGET_ROUND_SPREAD,
                )
            )
    analytics = report.get("analytics")
    if analytics and "seven_days" in analytics and "one_day" in analytics:
        ratio = _ratio(analytics["seven_days"]["p50_ms"], analytics["one_day"]["p50_ms"])
        found.append(
            (
                f"analytics p50 with {report['options']['analytics_days']} days of history "
                f"≤ {TARGET_ANALYTICS_GROWTH:g}× p50 with 1 day",
                f"{ratio:.2f}×",
                ratio <= TARGET_ANALYTICS_GROWTH,
            )
        )
    found += _fleet_targets(report)
    for source, title in STORAGE_SOURCES:
        storage = report.get(source)
        if not storage:
            continue
        for table, figures in storage.items():
            found.append(
                (
                    f"≤ {TARGET_BYTES_PER_READING:g} B per reading, {table} ({title})",
                    f"{figures['bytes_per_reading']:.1f} B",
                    figures["bytes_per_reading"] <= TARGET_BYTES_PER_READING,
                )
            )
    # The register columns count too: readings sending the register, or both fields, written
    # by the engine's batch path on an open day (phase 8).
    registers = report.get("registers")
    if registers:
        for variant, title in (("register", "register only"), ("both", "both fields")):
            figures = registers["variants"][variant]
            for table in ("meter_readings", "vehicle_readings"):
                found.append(
                    (
                        f"≤ {TARGET_BYTES_PER_READING:g} B per reading, {table} "
                        f"({title}, open day)",
                        f"{figures[table]:.1f} B",
                        figures[table] <= TARGET_BYTES_PER_READING,
                    )
                )
    return found


def _fleet_targets(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """The fleet view's targets: fleet and series latency, and ingest with rollups kept."""
    found: list[tuple[str, str, bool]] = []
    analytics = report.get("analytics") or {}
    one = (analytics.get("one_day") or {}).get("fleet_24h")
    seven = analytics.get("seven_days") or {}
    devices = analytics.get("devices", 0)
    if one:
        found.append(
            (
                f"fleet performance, 24 h, {devices:,} vehicles: p50 ≤ {TARGET_FLEET_24H_MS:g} ms",
                _ms(one["p50_ms"]),
                one["p50_ms"] <= TARGET_FLEET_24H_MS,
            )
        )
    if one and seven.get("fleet_24h"):
        ratio = _ratio(seven["fleet_24h"]["p50_ms"], one["p50_ms"])
        found.append(
            (
                f"fleet performance, 24 h, p50 with {seven['history_days']} days of history "
                f"≤ {TARGET_FLEET_GROWTH:g}× p50 with 1 day",
                f"{ratio:.2f}×",
                ratio <= TARGET_FLEET_GROWTH,
            )
        )
    if seven.get("fleet_7d"):
        p50 = seven["fleet_7d"]["p50_ms"]
        found.append(
            (
                f"fleet performance, 7-day window: p50 ≤ {TARGET_FLEET_7D_MS:g} ms",
                _ms(p50),
                p50 <= TARGET_FLEET_7D_MS,
            )
        )
    if seven.get("series_7d_1h"):
        p50 = seven["series_7d_1h"]["p50_ms"]
        found.append(
            (
                f"one vehicle's series, 7 days at 1h: p50 ≤ {TARGET_SERIES_7D_MS:g} ms",
                _ms(p50),
                p50 <= TARGET_SERIES_7D_MS,
            )
        )
    rollups = report.get("rollups")
    if rollups:
        kept_up = bool(rollups.get("folder_kept_up"))
        found.append(
            (
                f"ingest with rollups kept ≥ {TARGET_ROLLUP_SHARE:g}× without (steady state, "
                "the folder keeping up)",
                f"{rollups['ratio']:.2f}×" + ("" if kept_up else " (the folder fell behind)"),
                rollups["ratio"] >= TARGET_ROLLUP_SHARE and kept_up,
            )
        )
    return found


def _fleet_rows(report: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    analytics = report.get("analytics") or {}
    devices = analytics.get("devices", 0)
    one = (analytics.get("one_day") or {}).get("fleet_24h")
    seven = analytics.get("seven_days") or {}

    def latency(figures: dict[str, Any]) -> str:
        return f"p50 {_ms(figures['p50_ms'])}, p99 {_ms(figures['p99_ms'])}"

    if one:
        rows.append(
            (
                f"5 GET /v1/analytics/fleet/performance (last 24 whole hours, {devices:,} "
                f"vehicles), 1 day of history, 1 client",
                latency(one),
                f"target {TARGET_FLEET_24H_MS:g} ms",
                f"{_ratio(one['p50_ms'], TARGET_FLEET_24H_MS):.2f}×",
            )
        )
    if seven.get("fleet_24h"):
        figures = seven["fleet_24h"]
        rows.append(
            (
                f"5 GET /v1/analytics/fleet/performance (last 24 whole hours), "
                f"{seven['history_days']} days of history",
                latency(figures),
                "fleet with 1 day (5)",
                f"{_ratio(figures['p50_ms'], one['p50_ms']):.2f}×" if one else "—",
            )
        )
    if seven.get("fleet_7d"):
        figures = seven["fleet_7d"]
        rows.append(
            (
                "5 GET /v1/analytics/fleet/performance, 7-day window on whole hours",
                latency(figures),
                f"target {TARGET_FLEET_7D_MS:g} ms",
                f"{_ratio(figures['p50_ms'], TARGET_FLEET_7D_MS):.2f}×",
            )
        )
    if seven.get("fleet_7d_minutes") and seven.get("fleet_7d"):
        figures = seven["fleet_7d_minutes"]
        rows.append(
            (
                "5 GET /v1/analytics/fleet/performance, 7-day window to the minute (partial "
                "hours from history)",
                latency(figures),
                "7 days on whole hours (5)",
                f"{_ratio(figures['p50_ms'], seven['fleet_7d']['p50_ms']):.2f}×",
            )
        )
    if seven.get("series_7d_1h"):
        figures = seven["series_7d_1h"]
        rows.append(
            (
                "5 GET /v1/analytics/vehicle/{vehicleId}/series, 7 days to the minute at 1h, "
                "random vehicles, 1 client",
                latency(figures),
                f"target {TARGET_SERIES_7D_MS:g} ms",
                f"{_ratio(figures['p50_ms'], TARGET_SERIES_7D_MS):.2f}×",
            )
        )
    rollups = report.get("rollups")
    if rollups:
        rows.append(
            (
                f"7 ingest with rollups kept (writer's inbox, the folder beside it every "
                f"{rollups['fold_seconds']:g} s), in process, {rollups['readings']:,} readings",
                f"{_rate(rollups['with'])} readings/s committed while the folder ran (it folded "
                f"{_rate(rollups['fold_readings_per_second'])}/s while busy); "
                f"{_rate(rollups['with_once_folded'])}/s until the last fold "
                f"({rollups['ratio_once_folded']:.2f}×)"
                + (
                    f"; the charging split caught up {rollups['split_seconds']:.1f} s after it "
                    f"({rollups['split_vehicle_days']:,} vehicle-days computed over the run)"
                    if "split_seconds" in rollups
                    else ""
                ),
                f"the same writer without rollups: {_rate(rollups['without'])} readings/s",
                f"{rollups['ratio']:.2f}×",
            )
        )
    registers = report.get("registers")
    if registers:
        variants = registers["variants"]
        interval = variants["interval"]
        for variant, title in (("register", "the register only"), ("both", "both fields")):
            figures = variants[variant]
            rows.append(
                (
                    f"8 ingest of readings sending {title}, in process, "
                    f"{registers['readings']:,} readings",
                    f"{_rate(figures['readings_per_second'])} readings/s until the last fold; "
                    f"history {figures['meter_readings']:.1f} B/reading (meters), "
                    f"{figures['vehicle_readings']:.1f} (vehicles)",
                    f"interval readings, same run: {_rate(interval['readings_per_second'])}/s, "
                    f"{interval['meter_readings']:.1f} B/reading",
                    f"{figures['readings_per_second'] / interval['readings_per_second']:.2f}×",
                )
            )
    return rows


def bytes_split(figures: dict[str, Any]) -> str:
    """Where a reading's bytes go: its row (heap) and its (device, ts) index entry."""
    if "heap_bytes_per_reading" not in figures:  # a report from before the split was kept
        return ""
    return (
        f" (rows {figures['heap_bytes_per_reading']:.1f} + "
        f"index {figures['index_bytes_per_reading']:.1f})"
    )


def _results_table(report: dict[str, Any]) -> list[str]:
    options = report["options"]
    rows: list[tuple[str, str, str, str]] = []
    floor = report.get("floor")
    naive = report.get("naive")
    if floor:
        rows.append(
            (
                f"1 storage floor: binary COPY into history + live upsert, "
                f"{floor['transaction_size']:,} readings a transaction, "
                f"{floor['connections']} connections",
                f"{_rate(floor['readings_per_second'])} readings/s",
                "itself",
                "1.00×",
            )
        )
    writer = report.get("writer")
    if writer:
        rows.append(
            (
                f"2 engine's writer alone, in process: the same readings, no HTTP, no JSON "
                f"({writer['batch_size']:,} readings a submission, {writer['clients']} tasks)",
                f"{_rate(writer['readings_per_second'])} readings/s",
                "storage floor (1)",
                f"{_ratio(writer['readings_per_second'], floor['readings_per_second']):.2f}×"
                if floor
                else "—",
            )
        )
    for engine in report.get("engine", []):
        batch = engine["batch"]
        within = (
            f"; {_ratio(batch['readings_per_second'], writer['readings_per_second']):.2f}× "
            "the writer alone"
            if writer
            else ""
        )
        rows.append(
            (
                f"2 engine, batch HTTP, {_workers(engine['workers'])} ({options['batch_size']:,} "
                f"readings a request, {options['batch_clients']} clients)",
                f"{_rate(batch['readings_per_second'])} readings/s",
                "storage floor (1)",
                f"{_ratio(batch['readings_per_second'], floor['readings_per_second']):.2f}×{within}"
                if floor
                else "—",
            )
        )
    alone = report.get("http_alone")
    alone_rate = alone["single"]["requests_per_second"] if alone else 0.0
    for engine in report.get("engine", []):
        single = engine["single"]
        ratio = "—"
        if naive:
            base = naive["single"]
            ratio = (
                f"{_ratio(single['requests_per_second'], base['requests_per_second']):.2f}× "
                f"(p50 {_ratio(single['p50_ms'], base['p50_ms']):.2f}×, "
                f"p99 {_ratio(single['p99_ms'], base['p99_ms']):.2f}×)"
            )
        rows.append(
            (
                f"3 engine, one reading a request, {_workers(engine['workers'])}, "
                f"{options['single_clients']} clients",
                f"{_rate(single['requests_per_second'])} requests/s, "
                f"p50 {_ms(single['p50_ms'])}, p99 {_ms(single['p99_ms'])}",
                "naive, one reading a request (4)",
                ratio
                + (
                    f"; {_ratio(single['requests_per_second'], alone_rate):.2f}× the HTTP "
                    "server alone"
                    if alone_rate
                    else ""
                ),
            )
        )
    if naive:
        single = naive["single"]
        rows.append(
            (
                f"4 naive (one transaction per reading, same HTTP stack, "
                f"{naive['connections']} connections), one reading a request, "
                f"{options['single_clients']} clients",
                f"{_rate(single['requests_per_second'])} requests/s, "
                f"p50 {_ms(single['p50_ms'])}, p99 {_ms(single['p99_ms'])}",
                "itself",
                "1.00×",
            )
        )
        if alone:
            figures = alone["single"]
            rows.append(
                (
                    "4 HTTP server alone (the engine's own uvicorn server, a bare ASGI app "
                    "answering every reading as stored, storing nothing), one reading a "
                    f"request, {options['single_clients']} clients",
                    f"{_rate(figures['requests_per_second'])} requests/s, "
                    f"p50 {_ms(figures['p50_ms'])}, p99 {_ms(figures['p99_ms'])}",
                    "naive, one reading a request (4)",
                    f"{_ratio(figures['requests_per_second'], single['requests_per_second']):.2f}×"
                    " (the most any server's ratio can be on this stack)",
                )
            )
        batch = naive["batch"]
        rows.append(
            (
                f"4 naive, batch HTTP (reference; {options['batch_size']:,} readings a request, "
                f"{options['batch_clients']} clients)",
                f"{_rate(batch['readings_per_second'])} readings/s",
                "storage floor (1)",
                f"{_ratio(batch['readings_per_second'], floor['readings_per_second']):.2f}×"
                if floor
                else "—",
            )
        )
    analytics = report.get("analytics")
    if analytics:
        one = analytics.get("one_day")
        for key, title in (
            ("one_day", "1 day"),
            ("seven_days", f"{options['analytics_days']} days"),
        ):
            figures = analytics.get(key)
            if not figures:
                continue
            baseline = "itself" if key == "one_day" else "analytics with 1 day (5)"
            ratio = "1.00×"
            if key != "one_day" and one:
                ratio = (
                    f"p50 {_ratio(figures['p50_ms'], one['p50_ms']):.2f}×, "
                    f"p99 {_ratio(figures['p99_ms'], one['p99_ms']):.2f}×"
                )
            rows.append(
                (
                    f"5 GET /v1/analytics/performance/{{vehicleId}} (24 h), {title} of history "
                    f"({figures['history_rows']:,} rows), {figures['clients']} clients",
                    f"p50 {_ms(figures['p50_ms'])}, p99 {_ms(figures['p99_ms'])}",
                    baseline,
                    ratio,
                )
            )
    rows += _fleet_rows(report)
    bulk = report.get("bulk_storage") or {}
    for source, title in STORAGE_SOURCES:
        for table, figures in (report.get(source) or {}).items():
            per_reading = figures["bytes_per_reading"]
            if source != "bulk_storage" and table in bulk:
                baseline = "bulk-loaded in arrival order (6)"
                ratio = f"{_ratio(per_reading, bulk[table]['bytes_per_reading']):.2f}×"
            else:
                baseline = f"target {TARGET_BYTES_PER_READING:g} B"
                ratio = f"{_ratio(per_reading, TARGET_BYTES_PER_READING):.2f}×"
            rows.append(
                (
                    f"6 history storage, {table}, {title} ({figures['readings']:,} readings, "
                    f"{figures['partitions']} partitions)",
                    f"{per_reading:.1f} B/reading{bytes_split(figures)}",
                    baseline,
                    ratio,
                )
            )
    lines = ["| figure | measured | baseline (same run) | ratio |", "|---|---:|---|---:|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines


def _engine_line(version: dict[str, Any] | None) -> str:
    if not version or not version.get("commit"):
        return "Engine: version unknown (not a git work tree)."
    changes = " plus uncommitted changes" if version["local_changes"] else ""
    return f"Engine: commit {version['commit']}{changes}."


def _foreign_load_lines(load: dict[str, Any] | None) -> list[str]:
    if not load:
        return []
    phases = ", ".join(
        f"{phase['phase']} {phase['share_of_machine']:.0%}" for phase in load["phases"]
    )
    line = (
        f"Other processes on this machine (not started by this run) used "
        f"{load['foreign_cpu_seconds']:g} CPU-seconds meanwhile, "
        f"{load['share_of_machine']:.0%} of all its cores over the run (by phase: {phases})."
    )
    if load.get("includes_database_server"):
        line += " (This counts the database server's processes too: it was not started here.)"
    if load["share_of_machine"] > 0.05:
        line += " The ratios compare paths that shared the machine with them unevenly."
    return [line, ""]


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a short Markdown page: setup, the table, the targets, the checks."""
    machine, server = report["machine"], report["postgres"]
    lines = [
        "# Energy-ingest benchmark",
        "",
        f"`{report['command']}` ({report['started_at']}, {report['run_seconds']:.0f} s)",
        "",
        f"Machine: {machine['usable_cores']} cores ({machine['cpu']}), {machine['memory_gib']} GiB "
        f"RAM, {machine['os']}, Python {machine['python']}. Servers, PostgreSQL and the load "
        "generator share these cores; all traffic is loopback.",
        "",
        _engine_line(report.get("engine_version")),
        "",
        f"PostgreSQL {server['server_version']} ({report['database']}): fsync={server['fsync']}, "
        f"synchronous_commit={server['synchronous_commit']}, "
        f"full_page_writes={server['full_page_writes']}, "
        f"shared_buffers={server['shared_buffers']}.",
        "",
        *_foreign_load_lines(report.get("foreign_load")),
        "## Results",
        "",
        *_results_table(report),
        "",
        *(
            [*render_profiles(report["profiles"]).splitlines(), ""]
            if report.get("profiles")
            else []
        ),
        *_machine_lines(report),
        "## Targets (printed, never asserted)",
        "",
        "| target | measured | |",
        "|---|---:|:-:|",
    ]
    lines += [f"| {target} | {value} | {_mark(ok)} |" for target, value, ok in targets(report)]
    lines += ["", "## How it was measured", ""]
    lines += [f"- {note}" for note in report["notes"]]
    lines += ["", "## Checks", ""]
    if report["problems"]:
        lines += [f"- ✗ {problem}" for problem in report["problems"]]
    else:
        lines.append(
            "- every request answered as expected, every reading stored, no error or "
            "warning in the servers' logs."
        )
    access = report.get("server_access_log_lines")
    if access:
        counts = ", ".join(f"{section} {count:,}" for section, count in access.items())
        changed = ", ".join(
            f"{key}={value}" for key, value in sorted(report.get("engine_environment", {}).items())
        )
        lines.append(
            "- servers ran with their default settings"
            + (f" apart from {changed} (see above)" if changed else "")
            + ", access log included; its per-request lines are counted here and left out of "
            f"latest-servers.log: {counts}."
        )
    return "\n".join(lines) + "\n"


def render_profiles(profiles: list[dict[str, Any]]) -> str:
    """Where each server phase's CPU went: one row per phase, every round's samples together."""
    layers = list(profiles[0]["layers"])
    lines = [
        "### Beside the ingest figures: where the servers' CPU went (py-spy, every round of "
        "a phase together)",
        "",
        "Shares of the server's CPU samples. *Per-reading steps*: samples inside the frames that "
        "run once per reading (decoding and validation, keys, COPY records and their encoding; "
        "`bench/profile.py` lists them); *of which engine frames*: those whose innermost Python "
        "frame is the engine's own (py-spy sees Python frames only, so C a frame calls, such as "
        "msgspec's decoder or asyncpg's encoders, counts for its caller). The layers are self "
        "time by package.",
        "",
        "| phase | samples | per-reading steps | of which engine frames | "
        + " | ".join(layers)
        + " | top functions (self) |",
        "|---|---:|---:|---:|" + "---:|" * len(layers) + "---|",
    ]
    for profile in profiles:
        top = ", ".join(
            f"{name.split(' (')[0]} {share:.0%}" for name, share in profile["functions_self"][:4]
        )
        shares = " | ".join(f"{profile['layers'][layer]:.0%}" for layer in layers)
        lines.append(
            f"| {profile['file']} | {profile['samples']:,} | {profile['per_reading']:.0%} | "
            f"{profile['per_reading_python']:.0%} | {shares} | {top} |"
        )
    return "\n".join(lines)


def _loads_watched(results: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(label, machine figures) of every load that was watched, in the results' order."""
    loads: list[tuple[str, dict[str, Any]]] = []
    for engine in results.get("engine", []):
        workers = engine["workers"]
        name = f"engine, {workers} worker{'s' if workers > 1 else ''}"
        for phase in ("batch", "single"):
            if "machine" in engine[phase]:
                loads.append((f"{name}, {phase}", engine[phase]["machine"]))
    for key, name in (("naive", "naive"), ("http_alone", "HTTP server alone")):
        for phase in ("batch", "single"):
            figures = results.get(key, {}).get(phase, {})
            if "machine" in figures:
                loads.append((f"{name}, {phase}", figures["machine"]))
    return loads


def _machine_lines(results: dict[str, Any]) -> list[str]:
    loads = _loads_watched(results)
    return [*render_machine(loads).splitlines(), ""] if loads else []


def render_machine(loads: list[tuple[str, dict[str, Any]]]) -> str:
    """Where the machine's cores went during each reported load (its best round), and what
    the database's backends were busy with (when profiled): bench/activity.py."""
    lines = [
        "### Beside the ingest figures: where the machine's cores went (the reported round)",
        "",
        "Cores used on average over each load (CPU seconds over wall seconds, warm-up "
        "included), by process group, from /proc: the server's process tree, PostgreSQL, the "
        "bench process that generates the load, py-spy. When profiled, the phase database's "
        "backends busy on average (polled from pg_stat_activity every 5 ms) by what they ran: "
        "the writer's statements (a transaction's end counts with what it ended), the rollup "
        "folder's inbox fold and its charging split (`fold_vehicle_energy`), anything else; "
        "*waiting on I/O* counts the busy ones waiting on a file or the WAL.",
        "",
        "| load | "
        + " | ".join(GROUPS)
        + " | total | "
        + " | ".join(f"busy backends: {activity}" for activity in ACTIVITIES)
        + " | waiting on I/O |",
        "|---|" + "---:|" * (len(GROUPS) + 1 + len(ACTIVITIES) + 1),
    ]
    for label, machine in loads:
        cores = machine["cores"]
        database = machine.get("database")
        busy = (
            [f"{database['busy'][activity]:.2f}" for activity in ACTIVITIES]
            + [f"{database['waiting_on_io']:.2f}"]
            if database
            else ["—"] * (len(ACTIVITIES) + 1)
        )
        lines.append(
            f"| {label} | "
            + " | ".join(f"{cores[group]:.2f}" for group in GROUPS)
            + f" | {cores['total']:.2f} | "
            + " | ".join(busy)
            + " |"
        )
    return "\n".join(lines)
