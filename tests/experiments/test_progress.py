"""The remaining-time estimate is per method (and dataset), not a mean over every run so far."""

from __future__ import annotations

import pytest

from aape_lightning.experiments.progress import Progress


def test_remaining_time_uses_each_methods_own_run_time():
    groups = {f"{m} on D{d}": (m, f"D{d}") for m in ("fast", "slow") for d in (1, 2)}
    progress = Progress(len(groups), groups=groups)
    assert progress.remaining_s() is None  # nothing measured yet
    for what, wall in (("fast on D1", 10.0), ("slow on D1", 300.0)):
        progress.start(what)
        progress.finish(wall, what=what)
    # left: fast on D2 (a fast run: 10 s) and slow on D2 (300 s); a global mean would say 2 x 155
    assert progress.remaining_s() == pytest.approx(310.0)
    progress.start("fast on D2")
    progress.finish(12.0, what="fast on D2")
    assert progress.remaining_s() == pytest.approx(300.0)


def test_a_group_measured_on_its_own_dataset_wins_over_the_methods_mean():
    groups = {"a on big": ("a", "big"), "a on small": ("a", "small"), "a on big 2": ("a", "big"), "a on small 2": ("a", "small")}
    progress = Progress(4, parallel=2, groups=groups)
    for what, wall in (("a on big", 100.0), ("a on small", 2.0)):
        progress.start(what)
        progress.finish(wall, what=what)
    assert progress.remaining_s() == pytest.approx((100.0 + 2.0) / 2)
