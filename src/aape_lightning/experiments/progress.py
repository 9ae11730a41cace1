"""A progress line per run of a table: done / running / left, elapsed, and an estimate of what remains."""

from __future__ import annotations

import logging
import time
from collections import defaultdict

log = logging.getLogger("aape_lightning.table")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Counts runs and estimates the time left from what each kind of run took so far.

    ``groups`` names each run (by its ``what``) with its group, (method, dataset): a run left is
    expected to take the mean wall time of the runs of its group computed so far, else of its
    method's, else of every run's (a mean over all would say 2 minutes left for runs of 5 each
    when the fast methods went first). The sum is divided by the runs that go at once (``parallel``).
    Reused runs (finished earlier) cost nothing and do not enter the estimate.
    """

    def __init__(self, total: int, parallel: int = 1, groups: dict[str, tuple[str, str]] | None = None) -> None:
        self.total, self.done, self.failed, self.parallel = total, 0, 0, max(parallel, 1)
        self.start_time = time.perf_counter()
        self.groups = groups or {}
        self.computed: dict[tuple[str, str], list[float]] = defaultdict(list)
        self.running: list[str] = []
        self.ended: set[str] = set()

    def _expected(self, what: str | None) -> float | None:
        """The expected wall time of one run: its group's mean, else its method's, else every run's."""
        group = self.groups.get(what) if what is not None else None
        for match in ((lambda g: g == group), (lambda g: g[0] == group[0])) if group else ():
            times = [t for g, ts in self.computed.items() if match(g) for t in ts]
            if times:
                return sum(times) / len(times)
        every = [t for ts in self.computed.values() for t in ts]
        return sum(every) / len(every) if every else None

    def remaining_s(self) -> float | None:
        """Seconds left: the expected time of every run not yet ended, shared over ``parallel``; None if unknown."""
        left = self.total - self.done
        if not left:
            return 0.0
        named = [w for w in self.groups if w not in self.ended]
        named += [None] * max(left - len(named), 0)  # runs the caller did not name
        expected = [self._expected(w) for w in named[:left]]
        if any(e is None for e in expected):
            return None
        return sum(expected) / min(self.parallel, left)

    def line(self, what: str) -> str:
        running = len(self.running)
        left = self.total - self.done - running
        elapsed = time.perf_counter() - self.start_time
        remaining = self.remaining_s()
        if left + running == 0:
            eta = "nothing left"
        elif remaining is not None:
            eta = f"~{_clock(remaining)} remaining"
        else:
            eta = "remaining: unknown until a run finishes"
        failed = f" ({self.failed} failed)" if self.failed else ""
        return (f"[table {self.done}/{self.total} done{failed}, {running} running, {left} left] {what} | "
                f"elapsed {_clock(elapsed)}, {eta}")  # fmt: skip

    def reused(self, what: str) -> None:
        self.done += 1
        self.ended.add(what)
        log.info(self.line(f"reused {what}"))

    def start(self, what: str) -> None:
        self.running.append(what)
        log.info(self.line(f"running {what}"))

    def finish(self, wall_s: float, failed: bool = False, what: str | None = None) -> None:
        """``what`` names the run that ended when several go at once (default: the oldest running)."""
        self.done += 1
        self.failed += int(failed)
        what = self.running.pop(self.running.index(what) if what in self.running else 0)
        self.ended.add(what)
        self.computed[self.groups.get(what, ("", ""))].append(wall_s)
        log.info(self.line(f"{'FAILED' if failed else 'finished'} {what} in {_clock(wall_s)}"))
