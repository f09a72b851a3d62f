"""Summaries of py-spy's collapsed stacks (`--format raw`): where a server spent its CPU.

`python -m bench.profile FILE…` prints, per file, the share of samples by package (self time)
and the functions with the most self and inclusive time. The bench writes such files with
`--profile-dir`; py-spy itself is a developer tool, not a dependency of the project.
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
    return Profile(samples, by_thread, by_package, self_time, inclusive)


def summarize(path: Path, count: int = 12) -> dict[str, object]:
    """The top packages and functions of one recording, as shares of its samples."""
    profile = read_profile(path)
    return {
        "file": path.name,
        "samples": profile.samples,
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
        for title in ("threads", "packages_self", "functions_self", "functions_inclusive"):
            print(f"-- {title}")
            entries = summary[title]
            assert isinstance(entries, list)
            for entry, share in entries:
                print(f"{share:6.1%}  {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
