"""The machine the bench runs on: its facts, and the CPU that other processes take meanwhile.

On a shared machine other work (tests, demos) competes for the same cores; a ratio measured
while it ran is worth less, so the report says how much CPU the processes outside the bench's
own process trees used, phase by phase.
"""

from __future__ import annotations

import itertools
import os
import platform
import subprocess
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

_PROC = Path("/proc")
_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def machine_facts() -> dict[str, Any]:
    """Cores, CPU model, memory and OS of this machine."""
    cpu_model = platform.processor() or "unknown"
    with suppress(OSError):
        for line in (_PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    memory_gib = None
    with suppress(OSError, ValueError, IndexError):
        for line in (_PROC / "meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    return {
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "cpu": cpu_model,
        "memory_gib": memory_gib,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def engine_version(repository: Path) -> dict[str, Any]:
    """The commit the engine was measured at, and whether its package had local changes."""

    def git(*args: str) -> str:
        result = subprocess.run(
            ["git", "-C", str(repository), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return result.stdout.strip() if result.returncode == 0 else ""

    with suppress(OSError, subprocess.SubprocessError):
        commit = git("rev-parse", "--short=12", "HEAD")
        if commit:
            changed = git("status", "--porcelain", "--", "energy_ingest", "pyproject.toml")
            return {"commit": commit, "local_changes": bool(changed)}
    return {"commit": None, "local_changes": None}


class Process(NamedTuple):
    """One process as /proc/PID/stat has it: its parent, its command name, CPU ticks so far."""

    parent: int
    name: str
    ticks: int


def processes() -> dict[int, Process]:
    """Every process of this machine, by pid."""
    found: dict[int, Process] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue  # gone meanwhile
        # The command name (field 2) may hold spaces and parentheses: split after its end.
        fields = text[text.rindex(")") + 2 :].split()
        found[int(entry.name)] = Process(
            int(fields[1]),
            text[text.index("(") + 1 : text.rindex(")")],
            int(fields[11]) + int(fields[12]),
        )
    return found


def descendants(roots: set[int], found: dict[int, Process]) -> set[int]:
    """The processes of `found` in the trees of `roots` (the roots included)."""
    children: dict[int, list[int]] = {}
    for pid, process in found.items():
        children.setdefault(process.parent, []).append(pid)
    own, pending = set(), [root for root in roots if root in found]
    while pending:
        pid = pending.pop()
        if pid not in own:
            own.add(pid)
            pending.extend(children.get(pid, []))
    return own


@dataclass(slots=True)
class ForeignLoad:
    """A background thread summing the CPU of processes outside the bench's own trees."""

    interval: float = 1.0
    roots: set[int] = field(default_factory=lambda: {os.getpid()})
    phases: list[dict[str, Any]] = field(default_factory=list)
    _seen: dict[int, int] = field(default_factory=dict)
    _foreign_ticks: int = 0
    _started: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Take the first sample and keep sampling until stop()."""
        self._sample()
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._loop, name="foreign-load", daemon=True)
        self._thread.start()

    def add_root(self, pid: int) -> None:
        """Count a process started outside the bench's tree (a daemonised server) as its own."""
        with self._lock:
            self.roots.add(pid)

    def mark(self, phase: str) -> None:
        """A phase starts now; the previous one ends."""
        self._sample()
        with self._lock:
            self.phases.append(
                {"phase": phase, "start": time.monotonic(), "ticks": self._foreign_ticks}
            )

    def stop(self) -> dict[str, Any]:
        """Stop sampling; the foreign CPU of the run and of each phase."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._sample()
        end = time.monotonic()
        cores = len(os.sched_getaffinity(0))
        bounds = [*self.phases, {"start": end, "ticks": self._foreign_ticks}]
        per_phase = []
        for phase, following in itertools.pairwise(bounds):
            seconds = following["start"] - phase["start"]
            cpu = (following["ticks"] - phase["ticks"]) / _TICKS_PER_SECOND
            per_phase.append(
                {
                    "phase": phase["phase"],
                    "seconds": round(seconds, 1),
                    "foreign_cpu_seconds": round(cpu, 1),
                    "share_of_machine": round(cpu / (seconds * cores), 3) if seconds else 0.0,
                }
            )
        seconds = end - self._started
        cpu = self._foreign_ticks / _TICKS_PER_SECOND
        return {
            "seconds": round(seconds, 1),
            "foreign_cpu_seconds": round(cpu, 1),
            "share_of_machine": round(cpu / (seconds * cores), 3) if seconds else 0.0,
            "phases": per_phase,
        }

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        found = processes()
        with self._lock:
            own = descendants(self.roots, found)
            first = not self._seen
            for pid, (_, _, ticks) in found.items():
                before = self._seen.get(pid)
                self._seen[pid] = ticks
                if pid in own or first:
                    continue
                # A process new since the last sample counts with all it used so far.
                self._foreign_ticks += ticks - (before or 0)
            for pid in set(self._seen) - set(found):
                del self._seen[pid]
