"""H, the base-to-new summary, against values worked by hand (never against harmonic_mean itself)."""

from __future__ import annotations

import pytest

from aape_lightning.metrics import harmonic_mean


@pytest.mark.parametrize(
    ("base", "new", "h"),
    [
        (80.0, 60.0, 9600 / 140),  # 2 * 80 * 60 / (80 + 60) = 68.571...
        (50.0, 50.0, 50.0),  # equal accuracies: H is that accuracy
        (100.0, 0.0, 0.0),  # H is 0 when either side is 0
        (0.25, 0.5, 1 / 3),  # 2 * 0.125 / 0.75: sums below 1 are not treated as 0
        (0.0, 0.0, 0.0),  # defined, not a division by zero
    ],
)
def test_harmonic_mean_hand_worked(base: float, new: float, h: float) -> None:
    assert harmonic_mean(base, new) == pytest.approx(h, abs=1e-12)
