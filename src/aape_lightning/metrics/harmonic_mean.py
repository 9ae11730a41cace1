"""H, the base-to-new summary: the harmonic mean of base and new accuracy."""


def harmonic_mean(base: float, new: float) -> float:
    """H = 2 * base * new / (base + new); 0 when both are 0."""
    return 2 * base * new / (base + new) if base + new > 0 else 0.0
