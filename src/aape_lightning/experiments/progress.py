"""A progress line per run of a table: done / running / left, elapsed, and an estimate of what remains."""

from __future__ import annotations

import logging
import time

log = logging.getLogger("aape_lightning.table")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m{rest % 60:02d}s" if h else f"{rest // 60}m{rest % 60:02d}s"


class Progress:
    """Counts runs; the estimate is the mean wall time of the runs computed so far times those left,
    divided by the runs that go at once (``parallel``).

    Reused runs (finished earlier) cost nothing and do not enter the estimate.
    """

    def __init__(self, total: int, parallel: int = 1) -> None:
        self.total, self.done, self.failed, self.parallel = total, 0, 0, max(parallel, 1)
        self.start_time = time.perf_counter()
        self.computed: list[float] = []
        self.running: list[str] = []

    def line(self, what: str) -> str:
        running = len(self.running)
        left = self.total - self.done - running
        elapsed = time.perf_counter() - self.start_time
        if left + running == 0:
            eta = "nothing left"
        elif self.computed:
            per_run = sum(self.computed) / len(self.computed)
            eta = f"~{_clock(per_run * (left + running) / min(self.parallel, left + running or 1))} remaining"
        else:
            eta = "remaining: unknown until a run finishes"
        failed = f" ({self.failed} failed)" if self.failed else ""
        return (f"[table {self.done}/{self.total} done{failed}, {running} running, {left} left] {what} | "
                f"elapsed {_clock(elapsed)}, {eta}")  # fmt: skip

    def reused(self, what: str) -> None:
        self.done += 1
        log.info(self.line(f"reused {what}"))

    def start(self, what: str) -> None:
        self.running.append(what)
        log.info(self.line(f"running {what}"))

    def finish(self, wall_s: float, failed: bool = False, what: str | None = None) -> None:
        """``what`` names the run that ended when several go at once (default: the oldest running)."""
        self.done += 1
        self.failed += int(failed)
        self.computed.append(wall_s)
        what = self.running.pop(self.running.index(what) if what in self.running else 0)
        log.info(self.line(f"{'FAILED' if failed else 'finished'} {what} in {_clock(wall_s)}"))
