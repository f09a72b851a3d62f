"""Summaries of py-spy's collapsed stacks (`--format raw`): where a server spent its CPU.

`python -m bench.profile FILE…` prints, per file, the share of samples by package (self time)
and the functions with the most self and inclusive time. The bench writes such files with
`--profile-dir`; py-spy itself is a developer tool, not a dependency of the project.

It also sorts each sample into what the performance work asks of it: the per-reading steps (the
frames below that run once per reading: decoding and validating, keys, COPY records and their
encoding), the engine's own Python (self time), and the layers around it (HTTP server, event
loop, driver, logging). py-spy sees Python frames only: time in a C extension (msgspec, asyncpg's
Cython encoders) counts for the Python frame that called it.
"""

from __future__ import annotations

import re
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

_FRAME = re.compile(r"^(?P<function>.+) \((?P<file>[^()]+?)(?::(?P<line>\d+))?\)$")
# Paths are shown from these folders on: installed packages, the standard library, this repo.
_ROOTS = ("site-packages/", "lib/python3", str(Path(__file__).resolve().parents[1]) + "/")
_LIBRARY_ENTRIES = frozenset(
    {
        "run_in_threadpool",
        "BaseModel.model_validate",
        "Connection.copy_records_to_table",
        "Connection.copy_to_table",
        "Connection.execute",
        "Connection.fetch",
        "Logger.info",
        "Logger._log",
        "JSONEncoder.encode",
        "dumps",
        "uuid4",
        "solve_dependencies",
        "RequestResponseCycle.send",
    }
)


# Frames that do work once per reading of a request (a batch of 1,000 runs them 1,000 times);
# every other frame runs once per request or per batch.
PER_READING_STEPS = frozenset(
    {
        # decoding and validation: one step (msgspec), or the general path that names problems
        "PlainDecoder.batch",
        "PlainDecoder.one",
        "IngestService.check_batch_body",
        "validate_reading",
        "parse_json",
        # keys, the split by kind and the COPY records, then their encoding and sending
        "prepare_batch",
        "DeviceKeys.unknown",
        "DeviceKeys.keys_of",
        "Connection.copy_records_to_table",
        "Connection.copy_to_table",
        # the answer: outcomes counted per reading
        "IngestService._store_batch",
    }
)
# Leaf packages by layer (self time).
LAYERS = (
    ("HTTP server", frozenset({"uvicorn", "starlette", "fastapi", "h11", "httptools"})),
    ("event loop", frozenset({"asyncio", "uvloop", "selectors"})),
    ("driver", frozenset({"asyncpg"})),
    ("logging", frozenset({"logging"})),
)


def _short_file(path: str) -> str:
    """A file name without the machine's folders: package-relative when it can be."""
    if not path.startswith("/"):
        return path  # py-spy already made it relative to its package
    for root in _ROOTS:
        if root in path:
            tail = path.split(root, 1)[1]
            return tail.split("/", 1)[1] if root == "lib/python3" and "/" in tail else tail
    return path.rsplit("/", 1)[-1]


def _package(short_file: str) -> str:
    """`fastapi/routing.py` → fastapi, `threading.py` → threading."""
    return short_file.split("/", 1)[0].removesuffix(".py")


def _thread_role(functions: list[tuple[str, str]]) -> str:
    # Stacks sampled without stopping the process may miss their root frames; only the thread
    # pool's are told apart by a frame of their own.
    if any(name.startswith("WorkerThread.run ") for name, _ in functions):
        return "thread pool (anyio worker threads: sync dependencies, run_in_threadpool)"
    return "event loop thread"


def _interesting(name: str, package: str) -> bool:
    """Frames worth an inclusive share: the engine's own and a few costly library entries."""
    return package == "energy_ingest" or name.split(" (")[0] in _LIBRARY_ENTRIES


@dataclass(frozen=True, slots=True)
class Profile:
    """Sample counts of one recording: total, per package (self), per function (self, inclusive)."""

    samples: int
    by_thread: Counter[str]
    by_package: Counter[str]
    self_time: Counter[str]
    inclusive: Counter[str]
    per_reading: int = 0
    """Samples with a per-reading step on their stack."""
    per_reading_python: int = 0
    """Of those, samples whose leaf is the engine's own Python."""

    def __add__(self, other: Profile) -> Profile:
        """Two recordings of the same phase as one (rounds of a run)."""
        return Profile(
            self.samples + other.samples,
            self.by_thread + other.by_thread,
            self.by_package + other.by_package,
            self.self_time + other.self_time,
            self.inclusive + other.inclusive,
            self.per_reading + other.per_reading,
            self.per_reading_python + other.per_reading_python,
        )

    def share(self, value: int) -> float:
        return round(value / (self.samples or 1), 3)

    def layers(self) -> dict[str, float]:
        """Self time by layer: the engine's own Python, then the layers around it."""
        shares = {"engine Python": self.share(self.by_package["energy_ingest"])}
        for layer, packages in LAYERS:
            shares[layer] = self.share(sum(self.by_package[name] for name in packages))
        return shares

    def top(
        self, counter: Counter[str], count: int, below: float = 1.01
    ) -> list[tuple[str, float]]:
        """The `count` largest entries under `below` with their share of all samples."""
        total = self.samples or 1
        shares = [(name, round(value / total, 3)) for name, value in counter.most_common()]
        return [(name, share) for name, share in shares if share < below][:count]


def read_profile(path: Path) -> Profile:
    """Parse a collapsed-stack file: `frame;frame;…;leaf count` a line."""
    samples = 0
    by_thread: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    per_reading = per_reading_python = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        functions: list[tuple[str, str]] = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame.strip())
            if match is None:
                continue  # process or thread markers
            short = _short_file(match.group("file"))
            functions.append((f"{match.group('function')} ({short})", _package(short)))
        if not functions:
            continue
        samples += count
        by_thread[_thread_role(functions)] += count
        leaf, package = functions[-1]
        self_time[leaf] += count
        by_package[package] += count
        for name in {name for name, package in functions if _interesting(name, package)}:
            inclusive[name] += count
        if any(name.split(" (")[0] in PER_READING_STEPS for name, _ in functions):
            per_reading += count
            per_reading_python += count if package == "energy_ingest" else 0
    return Profile(
        samples, by_thread, by_package, self_time, inclusive, per_reading, per_reading_python
    )


def summarize(path: Path, count: int = 12) -> dict[str, object]:
    """The top packages and functions of one recording, as shares of its samples."""
    return _summary(path.name, read_profile(path), count)


def summarize_phases(paths: Sequence[Path], count: int = 12) -> list[dict[str, object]]:
    """One summary per phase, its rounds' recordings (`x.txt`, `x-2.txt`, …) added up."""
    phases: dict[str, Profile] = {}
    for path in paths:
        stem, _, number = path.stem.rpartition("-")
        phase = stem if number.isdigit() and stem else path.stem
        profile = read_profile(path)
        phases[phase] = phases[phase] + profile if phase in phases else profile
    return [_summary(phase, profile, count) for phase, profile in phases.items()]


def _summary(name: str, profile: Profile, count: int) -> dict[str, object]:
    return {
        "file": name,
        "samples": profile.samples,
        "per_reading": profile.share(profile.per_reading),
        "per_reading_python": profile.share(profile.per_reading_python),
        "layers": profile.layers(),
        "threads": profile.top(profile.by_thread, count),
        "packages_self": profile.top(profile.by_package, count),
        "functions_self": profile.top(profile.self_time, count),
        # The engine's frames and a few costly library calls, with all they call.
        "functions_inclusive": profile.top(profile.inclusive, 2 * count),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of every file named on the command line."""
    for name in argv if argv is not None else sys.argv[1:]:
        summary = summarize(Path(name))
        print(f"== {summary['file']}: {summary['samples']} samples")
        print(
            f"-- per-reading steps {summary['per_reading']:.1%} "
            f"(the engine's own Python {summary['per_reading_python']:.1%})"
        )
        layers = summary["layers"]
        assert isinstance(layers, dict)
        print("-- layers " + ", ".join(f"{name} {share:.1%}" for name, share in layers.items()))
        for title in ("threads", "packages_self", "functions_self", "functions_inclusive"):
            print(f"-- {title}")
            entries = summary[title]
            assert isinstance(entries, list)
            for entry, share in entries:
                print(f"{share:6.1%}  {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
