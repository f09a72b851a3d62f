"""What the simulator shows: a live progress bar, the run's summary, the detection result."""

from __future__ import annotations

import os
from collections import Counter
from datetime import datetime, timedelta
from types import TracebackType

from rich import box
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from energy_ingest.simulator.detection import OPTIONAL_FIGURES, Detection, Quality, Verdict
from energy_ingest.simulator.runner import Tally
from energy_ingest.simulator.simulation import FleetSimulation


def make_console(*, stderr: bool = False) -> Console:
    """A console; 120 columns when writing to a file or pipe, where rich would assume 80."""
    console = Console(stderr=stderr)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        return Console(stderr=stderr, width=120)
    return console


def _vehicles(count: int) -> str:
    return f"{count:,} vehicle" if count == 1 else f"{count:,} vehicles"


def _rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.1f}"


def _minute(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


class ProgressView:
    """A progress bar of one run (readings sent, readings/s, errors), refreshed by `update`.

    Back-fill measures progress in readings against the number the run will send; real time
    in simulated minutes, with the simulated clock beside it.
    """

    def __init__(self, console: Console, simulation: FleetSimulation, *, realtime: bool) -> None:
        self._simulation = simulation
        self._realtime = realtime
        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[sent]:>11,} readings"),
            TextColumn("[cyan]{task.fields[rate]:>8,.0f}/s"),
            TextColumn("[red]{task.fields[errors]:,} errors"),
            TextColumn("{task.fields[clock]}"),
            TimeElapsedColumn(),
            console=console,
        )
        # Back-fill: every device reports every minute; silence and retries move the real
        # total a little either way, so the bar is set to the true count when the run ends.
        total = simulation.minutes if realtime else simulation.minutes * simulation.device_count
        self._task: TaskID = self._progress.add_task(
            "real time" if realtime else "back-fill",
            total=total,
            sent=0,
            rate=0.0,
            errors=0,
            clock="",
        )

    def __enter__(self) -> ProgressView:
        self._progress.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, tally: Tally) -> None:
        """Show the tally so far."""
        if self._realtime:
            clock = self._simulation.start + timedelta(minutes=tally.simulated_minutes)
            completed, shown = tally.simulated_minutes, f"simulated {clock:%H:%M}"
        else:
            completed, shown = tally.sent, ""
        self._progress.update(
            self._task,
            completed=completed,
            sent=tally.sent,
            rate=tally.rate,
            errors=tally.errors,
            clock=shown,
        )

    def finish(self, tally: Tally) -> None:
        """Fill the bar to what was really sent."""
        self.update(tally)
        if not self._realtime and not tally.interrupted:
            self._progress.update(self._task, total=tally.sent, completed=tally.sent)


def _check(got: int, expected: int) -> str:
    return "[green]✓[/]" if got == expected else f"[yellow]expected {expected:,}[/]"


def print_run(console: Console, simulation: FleetSimulation, tally: Tally, mode: str) -> None:
    """The readings: sent, stored, duplicates, rejected, rate, and the mess that was made."""
    fleet = simulation.fleet
    counts = simulation.counts
    console.print(
        f"[bold]{mode}[/] {_minute(simulation.start)} → {_minute(simulation.end)}: "
        f"{len(fleet.vehicles):,} vehicles, {len(fleet.chargers):,} meters "
        f"({len(fleet.chargers) - len(fleet.vehicles)} spares), seed {fleet.spec.seed}"
    )
    table = Table(show_header=False, box=None, padding=(0, 2))
    table.add_column(justify="left")
    table.add_column(justify="right")
    table.add_column(justify="left")
    complete = not tally.interrupted
    table.add_row("sent", f"{tally.sent:,}", "readings, re-sends included")
    table.add_row(
        "stored",
        f"{tally.stored:,}",
        _check(tally.stored, counts.unique_delivered) if complete else "",
    )
    table.add_row(
        "duplicates",
        f"{tally.duplicates:,}",
        (_check(tally.duplicates, counts.retries) + " (the re-sends)") if complete else "",
    )
    table.add_row("rejected", f"{tally.rejected:,}", "; ".join(tally.messages[:2]))
    table.add_row(
        "retried",
        f"{tally.unavailable + tally.transport_errors:,}",
        f"requests ({tally.unavailable:,} × 503, {tally.transport_errors:,} connection errors)",
    )
    table.add_row(
        "rate",
        _rate(tally.rate),
        f"readings/s over {tally.elapsed:,.1f} s, {tally.requests:,} requests",
    )
    if tally.behind_seconds:
        table.add_row("behind", f"{tally.behind_seconds:,.1f}", "s at most behind schedule")
    table.add_row(
        "mess",
        "",
        f"{counts.jittered:,} jittered, {counts.late:,} late, {counts.retries:,} re-sent, "
        f"{counts.lost:,} lost to silent devices",
    )
    registers = sum(1 for vehicle in fleet.vehicles if vehicle.has_register)
    registers += sum(1 for charger in fleet.chargers if charger.has_register)
    if registers:
        devices = len(fleet.vehicles) + len(fleet.chargers)
        table.add_row(
            "registers",
            f"{registers:,}",
            f"of {devices:,} devices report a register; {counts.resets:,} resets, "
            f"{counts.glitches:,} glitches to 0, {counts.spikes:,} spikes over the cap",
        )
    if any(charger.standby_kw for charger in fleet.chargers):
        table.add_row("standby", "", "idle chargers draw standby power")
    console.print(table)
    if tally.interrupted:
        console.print("[yellow]interrupted: the run stopped before its end[/]")


def truth_text(verdict: Verdict) -> str:
    """The simulator's side of a vehicle: its charger's health and what went wrong."""
    efficiencies = "/".join(f"{e:.0%}" for e in verdict.charger_efficiencies)
    text = f"[red]faulty {efficiencies}[/]" if verdict.faulty else f"healthy {efficiencies}"
    if len(verdict.meter_ids) > 1:
        text += " · moved"
    if verdict.data_lost:
        text += " · [yellow]readings lost[/]"
    if not verdict.charged:
        text += " · never charged"
    return text


_OUTCOME_STYLE = {
    "true positive": "[green]found[/]",
    "true negative": "[green]ok[/]",
    "false positive": "[red]false alarm[/]",
    "false negative": "[red]missed[/]",
}


def print_detection(console: Console, detection: Detection) -> None:
    """Injected faults against the engine's underperforming flags: the confusion matrix."""
    judged = sum(1 for verdict in detection.verdicts if verdict.judged)
    charging = any(verdict.charging_efficiency for verdict in detection.verdicts)
    console.print(
        "[bold]Detection[/] (status underperforming = "
        + ("charging efficiency below the threshold the engine applied" if charging else "")
        + (f"efficiency below {detection.threshold:.0%}" if not charging else "")
        + f"), {judged:,} of {len(detection.verdicts):,} vehicles judged:"
    )
    table = Table(box=None, padding=(0, 2))
    table.add_column("")
    table.add_column("flagged", justify="right")
    table.add_column("not flagged", justify="right")
    faulty_judged = detection.true_positives + detection.false_negatives
    table.add_row(
        f"faulty charger ({faulty_judged})",
        f"[green]{detection.true_positives}[/] true positives",
        f"[red]{detection.false_negatives}[/] false negatives",
    )
    table.add_row(
        f"healthy charger ({detection.false_positives + detection.true_negatives})",
        f"[red]{detection.false_positives}[/] false positives",
        f"[green]{detection.true_negatives}[/] true negatives",
    )
    console.print(table)
    lost = detection.data_lost
    if lost:
        statuses = Counter(verdict.status for verdict in lost)
        faulty = sum(1 for verdict in lost if verdict.faulty)
        console.print(
            f"not judged: {_vehicles(len(lost))} ({faulty} faulty) lost readings while charging "
            f"(device silent); the engine said "
            + ", ".join(f"{status} × {n}" for status, n in statuses.most_common())
        )
    if detection.not_charged:
        console.print(f"not judged: {_vehicles(len(detection.not_charged))} never charged")
    agree = len(detection.verdicts) - len(detection.disagreements)
    style = "green" if not detection.disagreements else "red"
    console.print(
        f"[{style}]engine statuses consistent with the readings sent: "
        f"{agree:,}/{len(detection.verdicts):,}[/]"
    )
    for verdict in detection.disagreements[:5]:
        console.print(
            f"  [red]{verdict.vehicle_id}: engine says {verdict.status}, the data sent calls "
            f"for {verdict.expected_status}[/]"
        )


def _figure(value: float | None, unit: str = "") -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.4f}{unit}" if unit else f"{value:,.2f}"


_QUALITY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("resets", "resets", ""),
    ("glitches", "glitches", ""),
    ("rejected_deltas", "rejected deltas", ""),
    ("gaps", "gaps", ""),
    ("gap_minutes", "gap minutes", ""),
    ("reconciliation_kwh", "reconciliation", " kWh"),
    ("ac_reconciliation_kwh", "  of it AC", " kWh"),
    ("dc_reconciliation_kwh", "  of it DC", " kWh"),
    ("charging_ac", "charging AC", " kWh"),
    ("standby_ac", "standby AC", " kWh"),
)


def print_quality(console: Console, detection: Detection) -> None:
    """What the simulator injected into the readings against what the engine reports finding."""
    injected, reported = detection.injected, detection.quality_reported
    found: Quality | None = detection.found if reported else None
    console.print(
        "[bold]Data quality[/] over the vehicles' answers (meters and vehicles together): "
        + ("injected → found by the engine" if reported else "injected")
    )
    wrong = {name for v in detection.verdicts for name in v.quality_differences}
    table = Table(box=None, padding=(0, 2), show_header=False)
    table.add_column()
    table.add_column(justify="right")
    table.add_column(justify="right")
    table.add_column()
    for name, label, unit in _QUALITY_ROWS:
        expected = getattr(injected, name)
        got = getattr(found, name) if found is not None else None
        if found is not None and name in OPTIONAL_FIGURES and got is None:
            continue  # the engine does not answer it
        mark = ""
        if found is not None:
            mark = "[red]✗[/]" if name in wrong else "[green]✓[/]"
        table.add_row(label, _figure(expected, unit), _figure(got, unit) if found else "", mark)
    console.print(table)
    drawn = sum(verdict.standby_drawn for verdict in detection.verdicts)
    if drawn:
        console.print(
            f"standby drawn by idle chargers while feeding a vehicle: {drawn:,.4f} kWh "
            "(standby AC also counts meter energy in minutes the vehicle booked no DC)"
        )
    if not reported:
        console.print("[yellow]the engine's answers carry no dataQuality: nothing to compare[/]")
        return
    disagreeing = detection.quality_disagreements
    style = "green" if not disagreeing else "red"
    console.print(
        f"[{style}]vehicles whose data quality the engine reports as injected: "
        f"{len(detection.verdicts) - len(disagreeing):,}/{len(detection.verdicts):,}[/]"
    )
    for verdict in disagreeing[:5]:
        console.print(
            f"  [red]{verdict.vehicle_id}: {', '.join(verdict.quality_differences)} "
            f"differ (injected {verdict.injected}, engine {verdict.found})[/]"
        )


def worst(detection: Detection, limit: int) -> list[Verdict]:
    """The `limit` vehicles with the lowest efficiency (vehicles without one come last)."""
    return sorted(
        detection.verdicts,
        key=lambda v: (v.efficiency is None, v.efficiency or 0.0, v.vehicle_id),
    )[:limit]


def print_worst(console: Console, detection: Detection, limit: int) -> None:
    """A table of the worst vehicles by efficiency, the engine's status beside the truth."""
    charging = any(verdict.charging_efficiency for verdict in detection.verdicts)
    table = Table(
        title=f"The {limit} vehicles with the lowest efficiency "
        + ("(DC/AC while charging)" if charging else "(DC/AC)"),
        box=box.SIMPLE_HEAD,
        padding=(0, 1),
    )
    table.add_column("vehicle", no_wrap=True)
    table.add_column("meter", no_wrap=True)
    table.add_column("DC/AC", justify="right")
    table.add_column("AC kWh", justify="right")
    table.add_column("DC kWh", justify="right")
    table.add_column("avg °C", justify="right")
    table.add_column("engine says", no_wrap=True)
    table.add_column("simulated truth")
    table.add_column("verdict", no_wrap=True)
    for verdict in worst(detection, limit):
        status_style = {"underperforming": "red", "implausible": "yellow"}.get(verdict.status, "")
        outcome = verdict.outcome
        table.add_row(
            verdict.vehicle_id,
            " → ".join(verdict.meter_ids),
            f"{verdict.efficiency:.1%}" if verdict.efficiency is not None else "–",
            f"{verdict.energy_ac:,.1f}",
            f"{verdict.energy_dc:,.1f}",
            f"{verdict.average_battery_temp:.1f}"
            if verdict.average_battery_temp is not None
            else "–",
            f"[{status_style}]{verdict.status}[/]" if status_style else verdict.status,
            truth_text(verdict),
            _OUTCOME_STYLE[outcome] if outcome else "not judged",
        )
    console.print(table)
